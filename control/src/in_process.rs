//! The driver's portable core inside this process: the DSM the simulator
//! runs, or a test's, answering the same request bytes the driver would.

use std::io::{self, Read, Write};
use std::sync::{Arc, Mutex, PoisonError};

use rsdsm::control::{CallError, handle};
use rsdsm::dsm::Dsm;
use rsdsm::persist::{MAX_RECORD_LEN, MemoryStore, PolicyStore};
use rsdsm_engine::wire::{
    FrameHeader, MAX_REPLY_SIZE, ReplyHeader, STATUS_SUCCESS, WireError, encode_reply_frame,
};

use crate::transport::{Transport, TransportError, hresult_from_ntstatus};

/// The in-memory store [`InProcess::new`] uses: one record per LUN.
pub type DefaultStore<const LUNS: usize> = MemoryStore<LUNS, MAX_RECORD_LEN>;

/// A transport to a [`Dsm`] in this process, through the driver's own
/// control handler ([`rsdsm::control::handle`]).
///
/// The DSM is shared (`Arc`): the simulator keeps driving I/O through its
/// own handle while control calls arrive here. The store is behind a mutex,
/// so control calls are handled one at a time, as the driver's queue does.
#[derive(Debug)]
pub struct InProcess<const LUNS: usize, const PATHS: usize, S = DefaultStore<LUNS>> {
    dsm: Arc<Dsm<LUNS, PATHS>>,
    store: Mutex<Box<S>>,
}

impl<const LUNS: usize, const PATHS: usize> InProcess<LUNS, PATHS, DefaultStore<LUNS>> {
    /// A transport to `dsm` with an empty in-memory store.
    #[must_use]
    pub fn new(dsm: Arc<Dsm<LUNS, PATHS>>) -> Self {
        Self::with_store(dsm, Box::new(MemoryStore::new()))
    }
}

impl<const LUNS: usize, const PATHS: usize, S: PolicyStore> InProcess<LUNS, PATHS, S> {
    /// A transport to `dsm` persisting through `store`.
    #[must_use]
    pub fn with_store(dsm: Arc<Dsm<LUNS, PATHS>>, store: Box<S>) -> Self {
        Self { dsm, store: Mutex::new(store) }
    }

    /// The DSM.
    #[must_use]
    pub fn dsm(&self) -> &Arc<Dsm<LUNS, PATHS>> {
        &self.dsm
    }

    /// Runs `f` on the store (to inspect what was persisted).
    pub fn with_store_mut<R>(&self, f: impl FnOnce(&mut S) -> R) -> R {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut store)
    }

    /// One call into the driver's handler, writing into `output`: exactly
    /// what the driver's dispatch routine does with an IRP.
    ///
    /// # Errors
    /// [`CallError`] for a call that fails as a whole.
    pub fn call_into(&self, ioctl: u32, input: &[u8], output: &mut [u8]) -> Result<usize, CallError> {
        let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        handle(&self.dsm, &mut **store, ioctl, input, output)
    }

    /// Serves request frames from `stream` until it closes: the simulated
    /// DSM's side of [`UnixSocket`](crate::UnixSocket). Each frame is
    /// answered with the handler's reply, or with the NTSTATUS of a call
    /// that failed as a whole.
    ///
    /// # Errors
    /// An I/O error on the stream, or [`io::ErrorKind::InvalidData`] for a
    /// malformed request frame (the connection is then closed: its framing
    /// cannot be trusted any more). A clean close between frames is `Ok`.
    pub fn serve<T: Read + Write>(&self, stream: &mut T) -> io::Result<()> {
        let mut head = [0u8; FrameHeader::SIZE];
        let mut output = vec![0u8; MAX_REPLY_SIZE];
        let mut frame = vec![0u8; ReplyHeader::SIZE + MAX_REPLY_SIZE];
        loop {
            match read_full(stream, &mut head)? {
                0 => return Ok(()),
                n if n < head.len() => return Err(io::ErrorKind::UnexpectedEof.into()),
                _ => {}
            }
            let header = FrameHeader::decode(&head).map_err(invalid)?;
            let mut input = vec![0u8; header.input_len()];
            stream.read_exact(&mut input)?;
            let out = output.get_mut(..header.output_capacity()).unwrap_or_default();
            let n = match self.call_into(header.ioctl, &input, out) {
                Ok(written) => {
                    encode_reply_frame(STATUS_SUCCESS, out.get(..written).unwrap_or_default(), &mut frame)
                }
                Err(e) => encode_reply_frame(e.ntstatus(), &[], &mut frame),
            }
            .map_err(invalid)?;
            stream.write_all(frame.get(..n).unwrap_or_default())?;
            stream.flush()?;
        }
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full<T: Read>(stream: &mut T, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match stream.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

fn invalid(e: WireError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl<const LUNS: usize, const PATHS: usize, S: PolicyStore> Transport for InProcess<LUNS, PATHS, S> {
    fn call(&self, ioctl: u32, input: &[u8], output_capacity: usize) -> Result<Vec<u8>, TransportError> {
        let mut output = vec![0u8; output_capacity.min(MAX_REPLY_SIZE)];
        match self.call_into(ioctl, input, &mut output) {
            Ok(n) => {
                output.truncate(n);
                Ok(output)
            }
            Err(e) => Err(TransportError::CallFailed(hresult_from_ntstatus(e.ntstatus()))),
        }
    }
}
