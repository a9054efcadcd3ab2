//! `rsdsm-sim serve`: a live simulated DSM that answers the IOCTL protocol
//! over a Unix socket.
//!
//! The scenario's LUNs and paths run I/O in simulated time paced to the wall
//! clock (one simulated second per second), and the DSM core that serves
//! that I/O also answers control requests: each request frame carries the
//! exact bytes `DeviceIoControl` would pass to the driver, and
//! [`rsdsm::control::handle`] (the driver's own handler) answers them. So
//! `rsdsmctl --socket PATH` exercises the same code as on Windows.

use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rsdsm_engine::LoadBalancePolicy;
use rsdsm_engine::wire::{FrameHeader, ReplyHeader, STATUS_SUCCESS};

use crate::file_store::FileStore;
use crate::host::{Host, Store, memory_store};
use crate::run::Live;
use crate::scenario::Scenario;

/// How often the simulation catches up with the wall clock, and how often
/// blocked waits look at the stop flag.
const TICK: Duration = Duration::from_millis(5);
const IDLE: Duration = Duration::from_millis(20);

/// Serves `scenario` on `socket` until `stop` is set (SIGINT/SIGTERM).
/// With `state`, policy sets persist to files in that directory
/// ([`FileStore`]: crash-safe) and a restarted server starts each LUN with
/// its stored policy; without, they persist to memory.
///
/// # Errors
/// The socket cannot be bound (another server listens there, or the path is
/// not a socket), the state directory cannot be created, or the scenario
/// cannot start.
pub fn serve(
    scenario: &Scenario,
    policy: LoadBalancePolicy,
    seed: u64,
    socket: &Path,
    state: Option<&Path>,
    stop: &Arc<AtomicBool>,
) -> Result<(), String> {
    let store: Store = match state {
        Some(dir) => Box::new(FileStore::open(dir).map_err(|e| format!("{}: {e}", dir.display()))?),
        None => memory_store(),
    };
    let listener = bind(socket)?;
    let mut live = Live::with_store(scenario, policy, seed, store)
        .map_err(|e| format!("the scenario cannot start under {policy}: {e}"))?;
    let host = live.host();
    let result = std::thread::scope(|s| {
        let simulation = s.spawn(|| -> Result<(), String> {
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let now = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                live.advance_to(now).map_err(|e| format!("simulation: {e}"))?;
                std::thread::sleep(TICK);
            }
            Ok(())
        });
        while !stop.load(Ordering::Relaxed) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let host = Arc::clone(&host);
                    s.spawn(move || serve_connection(&stream, &host, stop));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(IDLE),
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    return Err(format!("accept: {e}"));
                }
            }
            if simulation.is_finished() {
                stop.store(true, Ordering::Relaxed);
            }
        }
        simulation.join().unwrap_or_else(|_| Err("the simulation thread panicked".into()))
    });
    let _ = std::fs::remove_file(socket);
    result
}

/// Binds the socket, replacing a stale socket file nobody listens on.
fn bind(socket: &Path) -> Result<UnixListener, String> {
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        if !meta.file_type().is_socket() {
            return Err(format!("{}: exists and is not a socket; not replacing it", socket.display()));
        }
        if UnixStream::connect(socket).is_ok() {
            return Err(format!("{}: another server is listening there", socket.display()));
        }
        std::fs::remove_file(socket).map_err(|e| format!("{}: stale socket: {e}", socket.display()))?;
    }
    let listener = UnixListener::bind(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    listener.set_nonblocking(true).map_err(|e| format!("{}: {e}", socket.display()))?;
    Ok(listener)
}

/// Answers request frames on one connection until the client closes it, a
/// frame is malformed (the stream cannot be resynchronised), or the server
/// stops.
fn serve_connection(stream: &UnixStream, host: &Host, stop: &AtomicBool) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(IDLE * 5));
    let mut stream = stream;
    loop {
        let mut head = [0u8; FrameHeader::SIZE];
        match read_full(&mut stream, &mut head, stop) {
            Ok(true) => {}
            Ok(false) | Err(_) => return,
        }
        let Ok(frame) = FrameHeader::decode(&head) else { return };
        let mut input = vec![0u8; frame.input_len()];
        if !matches!(read_full(&mut stream, &mut input, stop), Ok(true)) {
            return;
        }
        let mut output = vec![0u8; frame.output_capacity()];
        let mut store = host.live_store();
        let (status, written) =
            match rsdsm::control::handle(host.dsm(), &mut store, frame.ioctl, &input, &mut output) {
                Ok(n) => (STATUS_SUCCESS, n.min(output.len())),
                Err(e) => (e.ntstatus(), 0),
            };
        let reply = ReplyHeader { status, len: u32::try_from(written).unwrap_or(0) };
        let body = output.get(..written).unwrap_or_default();
        if stream.write_all(&reply.encode()).and_then(|()| stream.write_all(body)).is_err() {
            return;
        }
    }
}

/// Fills `buf`; `Ok(false)` on a clean end of stream before the first byte
/// or when the server stops.
fn read_full(stream: &mut &UnixStream, buf: &mut [u8], stop: &AtomicBool) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buf.len() {
        if stop.load(Ordering::Relaxed) {
            return Ok(false);
        }
        match stream.read(buf.get_mut(filled..).unwrap_or_default()) {
            Ok(0) if filled == 0 => return Ok(false),
            Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
            Ok(n) => filled += n,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}
