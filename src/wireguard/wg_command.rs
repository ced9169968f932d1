//! The `wg` backend: the WireGuard tool run as a program, for kernel and userspace interfaces
//! alike.
//!
//! A snapshot is `wg show IF dump`, whose output [`parse_dump`] reads; a batch is one
//! `wg set IF peer KEY …` with every change's arguments. The program is run directly with
//! explicit arguments, never through a shell.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::{
    DeviceError, DevicePeer, MAX_ALLOWED_IPS, MAX_PEERS, MAX_REPLY_BYTES, PeerChange, bounded,
    check_changes, check_name, clamp_timeout, handshake_time, keepalive_secs, parse_decimal,
    parse_endpoint,
};
use crate::{IpNet, PublicKey};

/// How much of the program's standard error is kept (the rest is read and dropped).
const STDERR_KEPT: usize = 4096;

/// A WireGuard interface reached by running `wg`.
///
/// Each call runs the program once and waits at most the timeout
/// ([`DEFAULT_TIMEOUT`](WgCommand::DEFAULT_TIMEOUT) unless set with
/// [`with_timeout`](WgCommand::with_timeout)) for it to finish; a program still running then
/// is killed. Output longer than [`MAX_REPLY_BYTES`] is an error, read
/// no further. A failure carries the exit status and the first line of standard error.
///
/// **What a batch guarantees.** [`apply`](super::Device::apply) checks the batch, then runs
/// one `wg set` with every change's arguments. `wg` reads all of its arguments before it
/// changes anything, so a batch it refuses leaves the device untouched. It then hands the
/// whole batch to the device, and what a device refusal leaves applied is the device's rule
/// (for a userspace socket, see [`Uapi`](super::Uapi)).
///
/// ```no_run
/// use peerstore::wireguard::{Device, WgCommand};
///
/// let device = WgCommand::new("wg0")?.with_program("/usr/bin/wg");
/// for peer in device.peers()? {
///     println!("{}: {} bytes in, {} out", peer.public_key, peer.rx_bytes, peer.tx_bytes);
/// }
/// # Ok::<(), peerstore::wireguard::DeviceError>(())
/// ```
#[derive(Debug, Clone)]
pub struct WgCommand {
    name: String,
    program: PathBuf,
    timeout: Duration,
}

impl WgCommand {
    /// How long a call waits for the program unless told otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The interface `name`, through the `wg` program found on `PATH`.
    ///
    /// # Errors
    ///
    /// [`DeviceError::InvalidName`] if `name` cannot be an interface's (as for
    /// [`Uapi::new`](super::Uapi::new)), or is `all` or `interfaces`, which `wg show` reads as
    /// words of its own. Nothing is run yet.
    pub fn new(name: &str) -> Result<Self, DeviceError> {
        check_name(name)?;
        if name == "all" || name == "interfaces" {
            return Err(DeviceError::InvalidName {
                name: name.to_owned(),
                problem: "`wg show` reads it as a word of its own",
            });
        }
        Ok(WgCommand {
            name: name.to_owned(),
            program: PathBuf::from("wg"),
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }

    /// The same device through another program: a path, or a name looked up on `PATH`.
    #[must_use]
    pub fn with_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.program = program.into();
        self
    }

    /// The same device with another timeout for each run, taken as at least 1 ms and at most
    /// an hour.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = clamp_timeout(timeout);
        self
    }

    /// The program run.
    #[must_use]
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// How long a call waits for the program.
    #[must_use]
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Runs `PROGRAM SUBCOMMAND IF ARGS…` and returns its standard output if it succeeds.
    fn run(
        &self,
        subcommand: &'static str,
        args: &[impl AsRef<OsStr>],
    ) -> Result<Vec<u8>, DeviceError> {
        let deadline = Instant::now() + self.timeout;
        let io_error = |action: String, error: io::Error| DeviceError::Io {
            interface: self.name.clone(),
            action,
            error,
        };
        let timed_out = || DeviceError::Timeout {
            interface: self.name.clone(),
            request: if subcommand == "show" {
                "`wg show`"
            } else {
                "`wg set`"
            },
            after: self.timeout,
        };
        let mut child = Command::new(&self.program)
            .arg(subcommand)
            .arg(&self.name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| io_error(format!("run `{}`", self.program.display()), e))?;

        let (sender, receiver) = mpsc::channel();
        let readers = [
            (
                child
                    .stdout
                    .take()
                    .map(|out| Box::new(out) as Box<dyn Read + Send>),
                true,
            ),
            (
                child
                    .stderr
                    .take()
                    .map(|err| Box::new(err) as Box<dyn Read + Send>),
                false,
            ),
        ];
        for (pipe, is_stdout) in readers {
            let Some(pipe) = pipe else { continue };
            let sender = sender.clone();
            let spawned = thread::Builder::new()
                .name("wg-output".into())
                .spawn(move || {
                    let read = if is_stdout {
                        read_bounded(pipe, MAX_REPLY_BYTES + 1, false)
                    } else {
                        read_bounded(pipe, STDERR_KEPT, true)
                    };
                    let _ = sender.send((is_stdout, read));
                });
            if let Err(e) = spawned {
                stop(&mut child);
                return Err(io_error("start a thread to read `wg`'s output".into(), e));
            }
        }
        drop(sender);

        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        for _ in 0..2 {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok((true, Ok(out))) => stdout = out,
                Ok((false, Ok(err))) => stderr = err,
                Ok((_, Err(e))) => {
                    stop(&mut child);
                    return Err(io_error("read `wg`'s output".into(), e));
                }
                // Every reader has reported (a pipe that was not there has none to give).
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    stop(&mut child);
                    return Err(timed_out());
                }
            }
        }
        if stdout.len() > MAX_REPLY_BYTES {
            stop(&mut child);
            return Err(DeviceError::ReplyTooLarge {
                interface: self.name.clone(),
                limit: MAX_REPLY_BYTES,
            });
        }
        let status = wait_until(&mut child, deadline)
            .map_err(|e| io_error("wait for `wg`".into(), e))?
            .ok_or_else(|| {
                stop(&mut child);
                timed_out()
            })?;
        if status.success() {
            return Ok(stdout);
        }
        Err(DeviceError::Command {
            interface: self.name.clone(),
            program: self.program.display().to_string(),
            subcommand,
            status,
            stderr: first_line(&stderr),
        })
    }
}

/// Up to `limit` bytes of `pipe`; then, if `drain`, reads the rest to its end and drops it
/// (so that the writer never blocks), else stops reading.
fn read_bounded(pipe: impl Read, limit: usize, drain: bool) -> io::Result<Vec<u8>> {
    let mut pipe = pipe;
    let mut kept = Vec::new();
    pipe.by_ref()
        .take(u64::try_from(limit).unwrap_or(u64::MAX))
        .read_to_end(&mut kept)?;
    if drain {
        io::copy(&mut pipe, &mut io::sink())?;
    }
    Ok(kept)
}

/// Kills the program and reaps it (it may have exited already: both are then no-ops).
fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// The program's exit status, polled until `deadline`; `None` if it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_micros(200);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        // Its output has ended, so it is exiting: a few short polls suffice.
        thread::sleep(pause.min(left));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// The first line of standard error, at most 200 characters, without trailing white space.
fn first_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    bounded(text.lines().next().unwrap_or("").trim_end(), 200)
}

impl super::Device for WgCommand {
    fn name(&self) -> &str {
        &self.name
    }

    fn peers(&self) -> Result<Vec<DevicePeer>, DeviceError> {
        let output = self.run("show", &["dump"])?;
        parse_dump(&self.name, &output)
    }

    fn apply(&self, changes: &[PeerChange]) -> Result<(), DeviceError> {
        if changes.is_empty() {
            return Ok(());
        }
        check_changes(&self.name, changes)?;
        self.run("set", &set_arguments(changes))?;
        Ok(())
    }
}

/// The arguments after `wg set IF` that apply `changes`, in order.
fn set_arguments(changes: &[PeerChange]) -> Vec<String> {
    let mut args = Vec::new();
    for change in changes {
        args.push("peer".to_owned());
        args.push(change.public_key().to_string());
        match change {
            PeerChange::Set(config) => {
                if let Some(endpoint) = config.endpoint {
                    args.push("endpoint".to_owned());
                    args.push(endpoint.to_string());
                }
                args.push("allowed-ips".to_owned());
                // An empty list is an empty argument: the peer is left no allowed IPs.
                let networks: Vec<String> =
                    config.allowed_ips.iter().map(ToString::to_string).collect();
                args.push(networks.join(","));
                args.push("persistent-keepalive".to_owned());
                args.push(match keepalive_secs(config.persistent_keepalive) {
                    0 => "off".to_owned(),
                    secs => secs.to_string(),
                });
            }
            PeerChange::Remove(_) => args.push("remove".to_owned()),
        }
    }
    args
}

/// The peers in the output of `wg show IF dump`.
///
/// `interface` is the name the errors give. The first line is the interface's (private key,
/// public key, listen port, fwmark): its shape is checked, nothing of it is kept. Each other
/// line is a peer's eight tab-separated fields: public key, preshared key (skipped, not kept),
/// endpoint or `(none)`, allowed IPs comma-separated or `(none)`, latest handshake in Unix
/// seconds (0 for never), bytes received, bytes sent, persistent keepalive in seconds or
/// `off`. Keys are base64.
///
/// ```
/// use peerstore::wireguard::wg_command;
///
/// let dump = "cHJpdmF0ZQ==\tcHVibGlj\t51820\toff\n\
///             AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\t(none)\t[::1]:51820\t10.99.0.2/32\t0\t0\t148\t25\n";
/// let peers = wg_command::parse_dump("wg0", dump.as_bytes())?;
/// assert_eq!(peers[0].endpoint, Some("[::1]:51820".parse()?));
/// assert_eq!(peers[0].last_handshake, None);
/// assert_eq!(peers[0].tx_bytes, 148);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
///
/// [`DeviceError::ReplyTooLarge`] for output longer than
/// [`MAX_REPLY_BYTES`]; [`DeviceError::Dump`], naming the line, for no
/// interface line, a line that is not UTF-8 or has the wrong number of fields, a malformed
/// field, an empty line before the end, a peer listed twice, or more than
/// [`MAX_PEERS`] peers or [`MAX_ALLOWED_IPS`]
/// allowed IPs for one.
pub fn parse_dump(interface: &str, output: &[u8]) -> Result<Vec<DevicePeer>, DeviceError> {
    if output.len() > MAX_REPLY_BYTES {
        return Err(DeviceError::ReplyTooLarge {
            interface: interface.to_owned(),
            limit: MAX_REPLY_BYTES,
        });
    }
    let body = output.strip_suffix(b"\n").unwrap_or(output);
    let mut peers: Vec<DevicePeer> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for (index, raw) in body.split(|&b| b == b'\n').enumerate() {
        let number = index + 1;
        let fail = |problem: String| DeviceError::Dump {
            interface: interface.to_owned(),
            line: number,
            text: bounded(&String::from_utf8_lossy(raw), 80),
            problem,
        };
        let line = std::str::from_utf8(raw).map_err(|_| fail("not UTF-8".into()))?;
        let fields: Vec<&str> = line.splitn(9, '\t').collect();
        if number == 1 {
            if line.is_empty() {
                return Err(fail("no interface line".into()));
            }
            if fields.len() != 4 {
                return Err(fail(format!(
                    "{} fields where the interface line has 4",
                    fields.len()
                )));
            }
            continue;
        }
        if fields.len() != 8 {
            return Err(fail(format!(
                "{} fields where a peer line has 8",
                if fields.len() > 8 {
                    "more than 8".to_owned()
                } else {
                    fields.len().to_string()
                }
            )));
        }
        let peer = dump_peer(&fields)
            .map_err(|(field, problem)| fail(format!("field {field}: {problem}")))?;
        if !keys.insert(peer.public_key) {
            return Err(fail("this peer is listed twice".into()));
        }
        if peers.len() >= MAX_PEERS {
            return Err(fail(format!("more than {MAX_PEERS} peers")));
        }
        peers.push(peer);
    }
    Ok(peers)
}

/// One peer line's eight fields; the error is the field's number (from 1) and its problem.
fn dump_peer(fields: &[&str]) -> Result<DevicePeer, (usize, String)> {
    let number = |at: usize| {
        parse_decimal(fields[at]).ok_or_else(|| (at + 1, "not a decimal number".to_owned()))
    };
    let key: PublicKey = fields[0]
        .parse()
        .map_err(|e| (1, format!("not a public key: {e}")))?;
    let mut peer = DevicePeer::new(key);
    if fields[2] != "(none)" {
        peer.endpoint =
            Some(parse_endpoint(fields[2]).ok_or((3, "not a socket address".to_owned()))?);
    }
    if fields[3] != "(none)" {
        for network in fields[3].split(',') {
            if peer.allowed_ips.len() >= MAX_ALLOWED_IPS {
                return Err((4, format!("more than {MAX_ALLOWED_IPS} allowed IPs")));
            }
            let network: IpNet = network.parse().map_err(|_| {
                (
                    4,
                    format!("`{}` is not a network", bounded(network, 50).escape_debug()),
                )
            })?;
            peer.allowed_ips.push(network);
        }
    }
    peer.last_handshake = handshake_time(number(4)?, 0)
        .map_err(|()| (5, "a time too far in the future".to_owned()))?;
    peer.rx_bytes = number(5)?;
    peer.tx_bytes = number(6)?;
    if fields[7] != "off" {
        let secs =
            u16::try_from(number(7)?).map_err(|_| (8, "more than 65535 seconds".to_owned()))?;
        peer.persistent_keepalive = (secs != 0).then(|| Duration::from_secs(u64::from(secs)));
    }
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::time::SystemTime;

    use super::super::{Device, PeerConfig};
    use super::*;

    /// `wg show IF dump` recorded from wg-tools 1.0.20210914 over wireguard-go: a peer that
    /// shook hands with two allowed IPs, and peers that never did (one with an IPv6
    /// endpoint, keepalive off, no allowed IPs).
    const RECORDED: &str = "qCvygfM26OKCSlQOzCYAIi0oL4PAgVpx6SA+IJheI30=\tReCPi1T1fjVLPmzPv/2/+eL9MDTbH6IuofBLuSMBKAg=\t51901\toff\n\
5pcd3jnBKWUEhMGfOdyTPwL2O69qRFPj3JP94/UYAw0=\t(none)\t10.250.9.2:51902\t10.99.0.2/32,fd00::2/128\t1796196782\t180\t272\t5\n\
AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\t(none)\t[fe80::1]:5000\t(none)\t0\t0\t0\toff\n\
4AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\t(none)\t(none)\t10.0.0.0/24\t0\t0\t0\toff\n";

    const DEVICE_LINE: &str = "(none)\tReCPi1T1fjVLPmzPv/2/+eL9MDTbH6IuofBLuSMBKAg=\t51901\toff\n";
    const PEER: &str = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn dump_error(output: &str) -> (usize, String) {
        match parse_dump("wg0", output.as_bytes()) {
            Err(DeviceError::Dump { line, problem, .. }) => (line, problem),
            other => panic!("{output:?}: {other:?}"),
        }
    }

    fn with_peer(fields: &str) -> String {
        format!("{DEVICE_LINE}{PEER}\t{fields}\n")
    }

    #[test]
    fn a_recorded_dump_parses_to_its_peers() {
        let peers = parse_dump("wg0", RECORDED.as_bytes()).unwrap();
        assert_eq!(peers.len(), 3);
        let first = &peers[0];
        assert_eq!(
            first.public_key.to_string(),
            "5pcd3jnBKWUEhMGfOdyTPwL2O69qRFPj3JP94/UYAw0="
        );
        assert_eq!(
            first.endpoint,
            Some("10.250.9.2:51902".parse::<SocketAddr>().unwrap())
        );
        assert_eq!(first.allowed_ips, [net("10.99.0.2/32"), net("fd00::2/128")]);
        assert_eq!(
            first.last_handshake,
            Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_196_782))
        );
        assert_eq!((first.rx_bytes, first.tx_bytes), (180, 272));
        assert_eq!(first.persistent_keepalive, Some(Duration::from_secs(5)));

        let mut never = DevicePeer::new(PublicKey::from_bytes([0; 32]));
        never.endpoint = Some("[fe80::1]:5000".parse().unwrap());
        assert_eq!(peers[1], never);
        assert_eq!(peers[2].endpoint, None);
        assert_eq!(peers[2].allowed_ips, [net("10.0.0.0/24")]);
    }

    #[test]
    fn an_interface_without_peers_is_an_empty_list() {
        assert_eq!(parse_dump("wg0", DEVICE_LINE.as_bytes()).unwrap(), []);
        let no_newline = DEVICE_LINE.trim_end();
        assert_eq!(parse_dump("wg0", no_newline.as_bytes()).unwrap(), []);
    }

    #[test]
    fn a_malformed_line_names_its_line_and_field() {
        assert_eq!(dump_error(""), (1, "no interface line".to_owned()));
        assert_eq!(
            dump_error("a\tb\n"),
            (1, "2 fields where the interface line has 4".to_owned())
        );
        for (fields, problem) in [
            (
                "(none)\t(none)\t(none)\t0\t0\t0",
                "7 fields where a peer line has 8",
            ),
            (
                "(none)\t(none)\t(none)\t0\t0\t0\toff\textra\tmore",
                "more than 8 fields where a peer line has 8",
            ),
            (
                "(none)\tgarbage\t(none)\t0\t0\t0\toff",
                "field 3: not a socket address",
            ),
            (
                "(none)\t(none)\t10.0.0.0/8,nope\t0\t0\t0\toff",
                "field 4: `nope` is not a network",
            ),
            (
                "(none)\t(none)\t\t0\t0\t0\toff",
                "field 4: `` is not a network",
            ),
            (
                "(none)\t(none)\t(none)\t-1\t0\t0\toff",
                "field 5: not a decimal number",
            ),
            (
                "(none)\t(none)\t(none)\t18446744073709551615\t0\t0\toff",
                "field 5: a time too far in the future",
            ),
            (
                "(none)\t(none)\t(none)\t0\tx\t0\toff",
                "field 6: not a decimal number",
            ),
            (
                "(none)\t(none)\t(none)\t0\t0\t1e3\toff",
                "field 7: not a decimal number",
            ),
            (
                "(none)\t(none)\t(none)\t0\t0\t0\ton",
                "field 8: not a decimal number",
            ),
            (
                "(none)\t(none)\t(none)\t0\t0\t0\t65536",
                "field 8: more than 65535 seconds",
            ),
        ] {
            assert_eq!(
                dump_error(&with_peer(fields)),
                (2, problem.to_owned()),
                "{fields:?}"
            );
        }
        let bad_key = format!("{DEVICE_LINE}AAAA\t(none)\t(none)\t(none)\t0\t0\t0\toff\n");
        let (line, problem) = dump_error(&bad_key);
        assert_eq!(line, 2);
        assert!(
            problem.starts_with("field 1: not a public key: "),
            "{problem}"
        );
        let err = parse_dump(
            "wg0",
            with_peer("(none)\tgarbage\t(none)\t0\t0\t0\toff").as_bytes(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "wg0: `wg show dump` line 2 `{PEER}\\t(none)\\tgarbage\\t(none)\\t0\\t0\\t0\\toff`: \
                 field 3: not a socket address"
            )
        );
    }

    #[test]
    fn structure_is_checked() {
        let peer = format!("{PEER}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n");
        let twice = format!("{DEVICE_LINE}{peer}{peer}");
        assert_eq!(
            dump_error(&twice),
            (3, "this peer is listed twice".to_owned())
        );
        let gap = format!("{DEVICE_LINE}\n{peer}");
        assert_eq!(
            dump_error(&gap),
            (2, "1 fields where a peer line has 8".to_owned())
        );
        let invalid = format!("{DEVICE_LINE}\u{ff}\n").into_bytes();
        let mut invalid = invalid;
        invalid[DEVICE_LINE.len()] = 0xff;
        assert!(matches!(
            parse_dump("wg0", &invalid),
            Err(DeviceError::Dump { line: 2, .. })
        ));
        let huge = vec![b'x'; MAX_REPLY_BYTES + 1];
        assert!(matches!(
            parse_dump("wg0", &huge),
            Err(DeviceError::ReplyTooLarge { .. })
        ));
    }

    #[test]
    fn counts_are_bounded() {
        let mut output = String::from(DEVICE_LINE);
        for n in 0..=u32::try_from(MAX_PEERS).unwrap() {
            let mut bytes = [0u8; 32];
            bytes[..4].copy_from_slice(&n.to_be_bytes());
            output.push_str(&format!(
                "{}\t(none)\t(none)\t(none)\t0\t0\t0\toff\n",
                PublicKey::from_bytes(bytes)
            ));
        }
        assert_eq!(
            dump_error(&output),
            (MAX_PEERS + 2, "more than 10000 peers".to_owned())
        );
        let networks = vec!["10.0.0.0/8"; MAX_ALLOWED_IPS + 1].join(",");
        let fields = format!("(none)\t(none)\t{networks}\t0\t0\t0\toff");
        assert_eq!(
            dump_error(&with_peer(&fields)),
            (2, "field 4: more than 10000 allowed IPs".to_owned())
        );
    }

    #[test]
    fn a_batch_becomes_one_set_of_arguments() {
        let mut set = PeerConfig::new(PublicKey::from_bytes([1; 32]));
        set.endpoint = Some("[::1]:51820".parse().unwrap());
        set.allowed_ips = vec![net("10.99.0.2/32"), net("fd00::2/128")];
        set.persistent_keepalive = Some(Duration::from_secs(25));
        let bare = PeerConfig::new(PublicKey::from_bytes([2; 32]));
        let removed = PublicKey::from_bytes([3; 32]);
        let args = set_arguments(&[set.into(), bare.into(), PeerChange::Remove(removed)]);
        assert_eq!(
            args,
            [
                "peer",
                PEER,
                "endpoint",
                "[::1]:51820",
                "allowed-ips",
                "10.99.0.2/32,fd00::2/128",
                "persistent-keepalive",
                "25",
                "peer",
                "AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=",
                "allowed-ips",
                "",
                "persistent-keepalive",
                "off",
                "peer",
                "AwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwMDAwM=",
                "remove",
            ]
        );
    }

    #[test]
    fn names_wg_show_reads_as_words_are_refused() {
        for name in ["all", "interfaces"] {
            let err = WgCommand::new(name).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("`{name}`: not an interface name: `wg show` reads it as a word of its own")
            );
        }
        assert!(matches!(
            WgCommand::new("-h"),
            Err(DeviceError::InvalidName { .. })
        ));
        let device = WgCommand::new("wg0").unwrap();
        assert_eq!(device.program(), Path::new("wg"));
        assert_eq!(device.timeout(), Duration::from_secs(5));
        assert_eq!(device.name(), "wg0");
    }

    #[test]
    fn a_program_that_cannot_run_is_an_io_error() {
        let device = WgCommand::new("wg0")
            .unwrap()
            .with_program("/nonexistent/wg");
        let err = device.peers().unwrap_err();
        assert!(matches!(err, DeviceError::Io { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("wg0: cannot run `/nonexistent/wg`: "),
            "{err}"
        );
    }

    #[test]
    fn a_failing_program_gives_its_status_and_first_line() {
        // `false` ignores its arguments and fails with nothing on stderr.
        let device = WgCommand::new("wg0").unwrap().with_program("false");
        let err = device.peers().unwrap_err();
        match &err {
            DeviceError::Command {
                subcommand: "show",
                status,
                stderr,
                ..
            } => {
                assert_eq!(status.code(), Some(1));
                assert_eq!(stderr, "");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "wg0: `false show` failed (exit status: 1), nothing on stderr"
        );
        // `ls` fails on `show` and `wg0`, which are not files, and says so on stderr.
        let device = WgCommand::new("wg0").unwrap().with_program("ls");
        let err = device.peers().unwrap_err();
        match &err {
            DeviceError::Command { stderr, .. } => {
                assert!(stderr.contains("show"), "{stderr}");
                assert!(!stderr.contains('\n'));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn endless_output_is_read_no_further_than_the_limit() {
        // `yes` prints its arguments forever.
        let device = WgCommand::new("wg0").unwrap().with_program("yes");
        let err = device.peers().unwrap_err();
        assert!(matches!(err, DeviceError::ReplyTooLarge { .. }), "{err:?}");
    }

    #[test]
    fn a_program_that_hangs_is_killed_at_the_timeout() {
        use std::os::unix::fs::PermissionsExt as _;

        // A stand-in for `wg` that never answers.
        let script =
            std::env::temp_dir().join(format!("peerstore-wg-hangs-{}", std::process::id()));
        std::fs::write(&script, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700)).unwrap();
        let device = WgCommand::new("wg0")
            .unwrap()
            .with_program(&script)
            .with_timeout(Duration::from_millis(300));
        let started = Instant::now();
        let mut result = device.peers();
        // A thread of another test may be forking while the script is still open for
        // writing ("text file busy"): try again a few times.
        for _ in 0..20 {
            match &result {
                Err(DeviceError::Io { error, .. }) if error.raw_os_error() == Some(26) => {
                    result = device.peers();
                }
                _ => break,
            }
        }
        let _ = std::fs::remove_file(&script);
        let err = result.unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(matches!(err, DeviceError::Timeout { .. }), "{err:?}");
        assert_eq!(err.to_string(), "wg0: no answer to `wg show` within 300ms");
    }
}
