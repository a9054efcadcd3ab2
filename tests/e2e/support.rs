//! Shared helpers of the end-to-end tests: build the workspace's binaries,
//! start `rsdsm-sim serve`, and speak the framed IOCTL protocol.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use rsdsm_engine::wire::{FrameHeader, MAX_REPLY_SIZE, ReplyHeader, Request};

/// Path of a workspace binary, built once per test process. Integration
/// tests of another package get no `CARGO_BIN_EXE_*`, so this runs
/// `cargo build` — into its own target directory: the driver crate is a
/// cdylib, whose artifacts Cargo names without a hash, so a build with a
/// different feature set in the shared `target/` would overwrite the
/// library the running `cargo test` links against.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace root").to_path_buf();
        let target =
            std::env::var("CARGO_TARGET_DIR").map_or_else(|_| root.join("target"), PathBuf::from).join("e2e");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&root)
            .env("CARGO_TARGET_DIR", &target)
            .args(["build", "--quiet", "-p", "rsdsm-sim", "-p", "rsdsm-control"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the binaries failed");
        target.join("debug")
    });
    dir.join(name)
}

/// Writes `text` as a scenario file in a fresh temporary directory.
pub fn scenario_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsdsm-e2e-scn-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// What one `rsdsmctl` run printed, and how it exited.
#[derive(Debug)]
pub struct Ctl {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `rsdsmctl --socket SOCKET args...`.
pub fn rsdsmctl(socket: &Path, args: &[&str]) -> Ctl {
    let out = Command::new(binary("rsdsmctl")).arg("--socket").arg(socket).args(args).output().unwrap();
    Ctl {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A running `rsdsm-sim serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub socket: PathBuf,
    dir: PathBuf,
}

impl Server {
    /// Starts the simulated DSM with `args` after `serve --socket S`, and
    /// waits until it accepts connections.
    pub fn start(name: &str, args: &[&str]) -> Self {
        let dir = std::env::temp_dir().join(format!("rsdsm-e2e-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("dsm.sock");
        let child = Command::new(binary("rsdsm-sim"))
            .arg("serve")
            .arg("--socket")
            .arg(&socket)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rsdsm-sim serve");
        let server = Self { child, socket, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&server.socket).is_err() {
            assert!(Instant::now() < deadline, "rsdsm-sim serve did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// A connection to the server.
    pub fn connect(&self) -> UnixStream {
        UnixStream::connect(&self.socket).unwrap()
    }

    /// Sends SIGTERM and waits; returns the exit status.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "serve did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One IOCTL call over the socket: returns the call status and the output
/// buffer contents.
pub fn call_raw(stream: &mut UnixStream, ioctl: u32, input: &[u8], capacity: usize) -> (u32, Vec<u8>) {
    let head = FrameHeader {
        ioctl,
        input_len: u32::try_from(input.len()).unwrap(),
        output_capacity: u32::try_from(capacity).unwrap(),
    };
    stream.write_all(&head.encode()).unwrap();
    stream.write_all(input).unwrap();
    let mut reply = [0u8; ReplyHeader::SIZE];
    stream.read_exact(&mut reply).unwrap();
    let reply = ReplyHeader::decode(&reply, capacity).unwrap();
    let mut body = vec![0u8; reply.len()];
    stream.read_exact(&mut body).unwrap();
    (reply.status, body)
}

/// Encodes `request`, calls its IOCTL with the largest reply buffer, and
/// returns the reply bytes (an `RSDM` message).
pub fn call(stream: &mut UnixStream, request: &Request<'_>) -> Vec<u8> {
    let mut input = vec![0u8; request.encoded_len()];
    let n = request.encode(&mut input).unwrap();
    let (status, body) = call_raw(stream, request.opcode().ioctl(), &input[..n], MAX_REPLY_SIZE);
    assert_eq!(status, 0, "the call itself failed");
    body
}
