//! The WireGuard device layer: what a mesh node reads from and writes to its WireGuard
//! interface (with the `wireguard` feature).
//!
//! A [`Device`] is one WireGuard interface seen through two calls: [`peers`](Device::peers), a
//! snapshot of every peer the interface holds with what the interface knows of it (endpoint,
//! latest handshake, bytes each way, keepalive, allowed IPs), and
//! [`apply`](Device::apply), one batch of [`PeerChange`]s (add or reconfigure a peer, remove
//! a peer). The store says who the peers are; a device is where that becomes WireGuard
//! configuration, and where the evidence that a peer is reachable (a recent handshake, bytes
//! received) comes back from.
//!
//! Two backends implement it:
//!
//! - [`Uapi`] speaks the cross-platform userspace protocol over the interface's Unix socket
//!   (`/var/run/wireguard/IFNAME.sock`), as served by `wireguard-go` and other userspace
//!   implementations. No program is run; the parser and the writer are pure functions
//!   ([`uapi::parse_get_reply`], [`uapi::write_set_request`]).
//! - [`WgCommand`] runs the `wg` tool (`wg show IF dump`, `wg set IF …`), which reaches kernel
//!   interfaces as well as userspace ones. Its output parser is pure too
//!   ([`wg_command::parse_dump`]).
//!
//! Two drivers keep a device and a [`PeerStore`](crate::PeerStore) in step, each one call a
//! daemon makes every few seconds:
//!
//! - a [`Reconciler`] makes the device's peers what the store's active peers say (endpoints,
//!   allowed IPs, keepalive), changing only what differs, touching only peers it owns, and
//!   leaving alone an endpoint WireGuard roamed to by itself, which it hands to the store as
//!   evidence instead ([`reconcile`] has the rules);
//! - a [`Monitor`] tells the store what WireGuard saw: handshakes as evidence
//!   ([`PeerStore::confirm`](crate::PeerStore::confirm)), dead peers as failures, and peers
//!   dead too long as removals with a tombstone ([`monitor`] has the rules).
//!
//! Nothing here is `async`: each call blocks for at most its backend's timeout (2 s by
//! default for the socket, 5 s for the command).
//!
//! # What a batch guarantees
//!
//! Every change of a batch is checked before anything is sent (keepalive in whole seconds
//! from 1 to 65,535, at most [`MAX_ALLOWED_IPS`] allowed IPs, each key at most once per
//! batch); a refused change is a [`DeviceError::InvalidChange`] and the device is untouched.
//! What happens when the device itself refuses part of a batch depends on the backend, and
//! each one's documentation says it: in short, neither can roll back what the device had
//! already taken, and both send a batch as one request.
//!
//! # Secrets
//!
//! Both backends skip the device's private key and the peers' preshared keys in what they
//! read: they are neither parsed into a value nor kept.
//!
//! # Example
//!
//! ```no_run
//! use std::time::Duration;
//! use peerstore::wireguard::{Device, PeerChange, PeerConfig, Uapi};
//! use peerstore::PublicKey;
//!
//! let device = Uapi::new("wg0")?;
//! let key: PublicKey = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".parse()?;
//!
//! let mut peer = PeerConfig::new(key);
//! peer.endpoint = Some("192.0.2.7:51820".parse()?);
//! peer.allowed_ips = vec!["10.99.0.7/32".parse()?];
//! peer.persistent_keepalive = Some(Duration::from_secs(25));
//! device.apply(&[PeerChange::Set(peer)])?;
//!
//! for peer in device.peers()? {
//!     let shook_hands = peer.last_handshake.is_some();
//!     println!("{} at {:?}: handshake {shook_hands}, {} bytes in", peer.public_key, peer.endpoint, peer.rx_bytes);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Driving a device from the store
//!
//! A daemon's loop: what WireGuard saw goes to the store first, then the device is made what
//! the store says.
//!
//! ```no_run
//! use std::time::Duration;
//! use peerstore::wireguard::{Monitor, MonitorSettings, ReconcileSettings, Reconciler, Uapi};
//! use peerstore::{EndpointPolicy, PeerStore, PublicKey};
//!
//! # let own_public_key = PublicKey::from_bytes([0; 32]);
//! let store = PeerStore::builder().endpoint_policy(EndpointPolicy::resilient()).build()?;
//! let device = Uapi::new("wg0")?; // or WgCommand::new("wg0") for a kernel interface
//! let mut settings = ReconcileSettings::default(); // keepalive 25 s
//! settings.unmanaged.insert(own_public_key); // discovery may echo the node's own key back
//! let mut reconciler = Reconciler::new(settings);
//! let mut monitor = Monitor::new(MonitorSettings::default());
//! // Discovery threads call store.update(...) as before.
//! loop {
//!     monitor.observe(&store, &device)?; // what WireGuard saw, first
//!     let report = reconciler.reconcile(&store, &device)?; // then what the store says
//!     if !report.is_unchanged() {
//!         println!("{report}"); // 1 added, 0 updated, 0 removed, 4 unchanged, 0 roamed, 0 foreign
//!     }
//!     std::thread::sleep(Duration::from_secs(2));
//! }
//! # #[allow(unreachable_code)]
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::HashSet;
use std::fmt;
use std::io;
use std::net::{Ipv6Addr, SocketAddr, SocketAddrV6};
use std::process::ExitStatus;
use std::time::{Duration, SystemTime};

use crate::{IpNet, PublicKey};

#[cfg(test)]
mod fake;
pub mod monitor;
pub mod reconcile;
pub mod uapi;
pub mod wg_command;

pub use monitor::{Monitor, MonitorReport, MonitorSettings};
pub use reconcile::{ReconcileReport, ReconcileSettings, Reconciler};
pub use uapi::Uapi;
pub use wg_command::WgCommand;

/// The most bytes a device's answer may take (4 MiB): a longer one is an error, read no
/// further. About 10,000 peers of a few allowed IPs each fit.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// The most peers a device's answer may list.
pub const MAX_PEERS: usize = 10_000;

/// The most allowed IPs one peer may have, in an answer or in a [`PeerConfig`].
pub const MAX_ALLOWED_IPS: usize = 10_000;

/// The longest persistent keepalive WireGuard takes: the interval is a 16-bit count of seconds.
pub const MAX_PERSISTENT_KEEPALIVE: Duration = Duration::from_secs(65_535);

/// One WireGuard interface: a snapshot of its peers, and batches of changes to them.
///
/// Implemented by [`Uapi`] and [`WgCommand`]; a test double of a reconciler can implement it
/// too (build its answers with [`DevicePeer::new`]).
///
/// ```no_run
/// use peerstore::wireguard::{Device, Uapi, WgCommand};
///
/// // The same code drives either backend.
/// fn count(device: &dyn Device) -> Result<usize, Box<dyn std::error::Error>> {
///     Ok(device.peers()?.len())
/// }
/// let devices: Vec<Box<dyn Device>> = vec![Box::new(Uapi::new("wg0")?), Box::new(WgCommand::new("wg0")?)];
/// for device in &devices {
///     println!("{}: {} peers", device.name(), count(device.as_ref())?);
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Device: Send + Sync {
    /// The interface's name, as every error of this device says it.
    fn name(&self) -> &str;

    /// Every peer the interface holds, in the order the interface lists them.
    ///
    /// # Errors
    ///
    /// The device cannot be reached or does not answer in time, refuses the request, or
    /// answers something that is not a well-formed listing (malformed, or beyond
    /// [`MAX_REPLY_BYTES`], [`MAX_PEERS`] or [`MAX_ALLOWED_IPS`]). A listing is parsed whole
    /// or not at all.
    fn peers(&self) -> Result<Vec<DevicePeer>, DeviceError>;

    /// Applies one batch of changes, in order. An empty batch asks nothing of the device.
    ///
    /// # Errors
    ///
    /// A change is refused before anything is sent ([`DeviceError::InvalidChange`]); or the
    /// device cannot be reached, does not answer in time or refuses the request. What a
    /// refusal leaves applied is the backend's to say: see [`Uapi`] and [`WgCommand`].
    fn apply(&self, changes: &[PeerChange]) -> Result<(), DeviceError>;
}

/// What an interface knows of one of its peers.
///
/// ```
/// use peerstore::wireguard::DevicePeer;
/// use peerstore::PublicKey;
///
/// let peer = DevicePeer::new(PublicKey::from_bytes([1; 32]));
/// assert_eq!(peer.last_handshake, None); // never shook hands
/// assert!(peer.allowed_ips.is_empty());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevicePeer {
    /// The peer's public key.
    pub public_key: PublicKey,
    /// Where the interface sends the peer's packets, if it knows.
    pub endpoint: Option<SocketAddr>,
    /// When the latest handshake with the peer completed; `None` if it never did. The socket
    /// reports nanoseconds, `wg show dump` whole seconds.
    pub last_handshake: Option<SystemTime>,
    /// Bytes received from the peer.
    pub rx_bytes: u64,
    /// Bytes sent to the peer.
    pub tx_bytes: u64,
    /// How often a keepalive is sent when nothing else is; `None` when off.
    pub persistent_keepalive: Option<Duration>,
    /// The networks routed to the peer, in the interface's order.
    pub allowed_ips: Vec<IpNet>,
}

impl DevicePeer {
    /// A peer as an interface knows it when just added: no endpoint, never a handshake, no
    /// bytes, keepalive off, no allowed IPs.
    #[must_use]
    pub fn new(public_key: PublicKey) -> Self {
        DevicePeer {
            public_key,
            endpoint: None,
            last_handshake: None,
            rx_bytes: 0,
            tx_bytes: 0,
            persistent_keepalive: None,
            allowed_ips: Vec::new(),
        }
    }
}

/// One change to an interface's peers, for [`Device::apply`].
///
/// ```
/// use peerstore::wireguard::{PeerChange, PeerConfig};
/// use peerstore::PublicKey;
///
/// let key = PublicKey::from_bytes([9; 32]);
/// let changes = [PeerChange::Set(PeerConfig::new(key)), PeerChange::Remove(key)];
/// assert!(changes.iter().all(|change| change.public_key() == key));
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerChange {
    /// Adds the peer, or reconfigures it if the interface has it.
    Set(PeerConfig),
    /// Removes the peer (removing a peer the interface does not have is not an error).
    Remove(PublicKey),
}

impl PeerChange {
    /// The key of the peer the change is about.
    #[must_use]
    pub fn public_key(&self) -> PublicKey {
        match self {
            PeerChange::Set(config) => config.public_key,
            PeerChange::Remove(key) => *key,
        }
    }
}

impl From<PeerConfig> for PeerChange {
    fn from(config: PeerConfig) -> Self {
        PeerChange::Set(config)
    }
}

/// A peer's configuration, as [`PeerChange::Set`] gives it to an interface.
///
/// ```
/// use std::time::Duration;
/// use peerstore::wireguard::PeerConfig;
/// use peerstore::PublicKey;
///
/// let mut config = PeerConfig::new(PublicKey::from_bytes([3; 32]));
/// config.endpoint = Some("[2001:db8::3]:51820".parse()?);
/// config.allowed_ips = vec!["10.99.0.3/32".parse()?, "fd99::3/128".parse()?];
/// config.persistent_keepalive = Some(Duration::from_secs(25));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    /// The peer's public key.
    pub public_key: PublicKey,
    /// Where to send the peer's packets. `None` leaves the interface's endpoint for the peer
    /// as it is (none, for a new peer): neither protocol has a way to clear one.
    pub endpoint: Option<SocketAddr>,
    /// The networks routed to the peer. They replace the peer's allowed IPs: an empty list
    /// leaves it none. The interface stores each network with its host bits cleared.
    pub allowed_ips: Vec<IpNet>,
    /// How often to send a keepalive when nothing else is sent: whole seconds, 1 to 65,535;
    /// `None` turns it off.
    pub persistent_keepalive: Option<Duration>,
}

impl PeerConfig {
    /// A peer with no endpoint given, no allowed IPs and keepalive off.
    #[must_use]
    pub fn new(public_key: PublicKey) -> Self {
        PeerConfig {
            public_key,
            endpoint: None,
            allowed_ips: Vec::new(),
            persistent_keepalive: None,
        }
    }
}

/// Why a device call failed. Every message names the interface, and the errno, the line or
/// the field and value at fault where there is one.
///
/// ```
/// use peerstore::wireguard::{DeviceError, Uapi};
///
/// let err = Uapi::new("wg0/../x").unwrap_err();
/// assert!(matches!(err, DeviceError::InvalidName { .. }));
/// assert_eq!(err.to_string(), "`wg0/../x`: not an interface name: it contains `/`");
/// ```
#[non_exhaustive]
#[derive(Debug)]
pub enum DeviceError {
    /// The name cannot be a network interface's.
    InvalidName {
        /// The name given (at most its first 64 bytes).
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A change of the batch was refused before anything was sent: the device is untouched.
    InvalidChange {
        /// The interface.
        interface: String,
        /// The change's position in the batch, from 0.
        index: usize,
        /// The refused field, as in [`PeerConfig`] (`public_key` for a key given twice).
        field: &'static str,
        /// The refused value, as text.
        value: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Talking to the device failed: the socket could not be reached, a program could not be
    /// run, or the connection broke.
    Io {
        /// The interface.
        interface: String,
        /// What was being done, e.g. ``connect to `/var/run/wireguard/wg0.sock` ``.
        action: String,
        /// The operating system's error.
        error: io::Error,
    },
    /// The device did not answer within the backend's timeout.
    Timeout {
        /// The interface.
        interface: String,
        /// The request that went unanswered (`get`, `set`, ``wg show``, ``wg set``).
        request: &'static str,
        /// The timeout.
        after: Duration,
    },
    /// The device refused the request with an errno (negative, as the protocol sends it).
    Errno {
        /// The interface.
        interface: String,
        /// The errno the device answered.
        errno: i64,
        /// The request it answered: `get` or `set`.
        request: &'static str,
    },
    /// A line of the device's answer on its socket is not what the protocol allows.
    Reply {
        /// The interface.
        interface: String,
        /// The line's number, from 1.
        line: usize,
        /// The line (at most its first 80 characters).
        text: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The device's answer is longer than [`MAX_REPLY_BYTES`]; it was read no further.
    ReplyTooLarge {
        /// The interface.
        interface: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The device's answer on its socket ended before the blank line that closes it.
    ReplyTruncated {
        /// The interface.
        interface: String,
        /// How many bytes had come.
        received: usize,
    },
    /// The `wg` program exited with an error.
    Command {
        /// The interface.
        interface: String,
        /// The program run.
        program: String,
        /// Its subcommand: `show` or `set`.
        subcommand: &'static str,
        /// How it exited.
        status: ExitStatus,
        /// The first line it wrote to standard error (at most 200 characters), if any.
        stderr: String,
    },
    /// A line of `wg show IF dump`'s output is not what `wg` writes.
    Dump {
        /// The interface.
        interface: String,
        /// The line's number, from 1.
        line: usize,
        /// The line (at most its first 80 characters).
        text: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl DeviceError {
    /// The interface the error is about (for [`InvalidName`](DeviceError::InvalidName), the
    /// name that was refused).
    #[must_use]
    pub fn interface(&self) -> &str {
        match self {
            DeviceError::InvalidName { name, .. } => name,
            DeviceError::InvalidChange { interface, .. }
            | DeviceError::Io { interface, .. }
            | DeviceError::Timeout { interface, .. }
            | DeviceError::Errno { interface, .. }
            | DeviceError::Reply { interface, .. }
            | DeviceError::ReplyTooLarge { interface, .. }
            | DeviceError::ReplyTruncated { interface, .. }
            | DeviceError::Command { interface, .. }
            | DeviceError::Dump { interface, .. } => interface,
        }
    }
}

impl fmt::Display for DeviceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceError::InvalidName { name, problem } => {
                write!(
                    f,
                    "`{}`: not an interface name: {problem}",
                    name.escape_debug()
                )
            }
            DeviceError::InvalidChange {
                interface,
                index,
                field,
                value,
                problem,
            } => write!(
                f,
                "{interface}: change {index}, {field} `{}`: {problem}; nothing was sent",
                value.escape_debug()
            ),
            DeviceError::Io {
                interface,
                action,
                error,
            } => write!(f, "{interface}: cannot {action}: {error}"),
            DeviceError::Timeout {
                interface,
                request,
                after,
            } => write!(f, "{interface}: no answer to {request} within {after:?}"),
            DeviceError::Errno {
                interface,
                errno,
                request,
            } => write!(f, "{interface}: device answered errno={errno} to {request}"),
            DeviceError::Reply {
                interface,
                line,
                text,
                problem,
            } => write!(
                f,
                "{interface}: reply line {line} `{}`: {problem}",
                text.escape_debug()
            ),
            DeviceError::ReplyTooLarge { interface, limit } => {
                write!(f, "{interface}: reply longer than {limit} bytes")
            }
            DeviceError::ReplyTruncated {
                interface,
                received,
            } => write!(
                f,
                "{interface}: reply ended after {received} bytes, before its closing blank line"
            ),
            DeviceError::Command {
                interface,
                program,
                subcommand,
                status,
                stderr,
            } => {
                write!(f, "{interface}: `{program} {subcommand}` failed ({status})")?;
                if stderr.is_empty() {
                    f.write_str(", nothing on stderr")
                } else {
                    write!(f, ": {}", stderr.escape_debug())
                }
            }
            DeviceError::Dump {
                interface,
                line,
                text,
                problem,
            } => write!(
                f,
                "{interface}: `wg show dump` line {line} `{}`: {problem}",
                text.escape_debug()
            ),
        }
    }
}

impl std::error::Error for DeviceError {}

/// At most `max` characters of `text`, with `…` after a cut.
pub(crate) fn bounded(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_owned(),
        Some((cut, _)) => format!("{}…", &text[..cut]),
    }
}

/// The longest interface name Linux takes (`IFNAMSIZ` less the terminating NUL).
const MAX_NAME_LEN: usize = 15;

/// Checks a name as Linux checks an interface's, and refuses what would read as an option.
pub(crate) fn check_name(name: &str) -> Result<(), DeviceError> {
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_LEN {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("`.` and `..` are directories")
    } else if name.contains('/') {
        Some("it contains `/`")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else if name.contains(':') {
        Some("it contains `:`")
    } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("it contains white space or a control character")
    } else if name.starts_with('-') {
        Some("it starts with `-`")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => {
            let mut shown = name.to_owned();
            if shown.len() > 64 {
                let mut cut = 64;
                while !shown.is_char_boundary(cut) {
                    cut -= 1;
                }
                shown.truncate(cut);
            }
            Err(DeviceError::InvalidName {
                name: shown,
                problem,
            })
        }
    }
}

/// Checks a batch as both backends need it: nothing is sent unless every change passes.
pub(crate) fn check_changes(interface: &str, changes: &[PeerChange]) -> Result<(), DeviceError> {
    let mut seen = HashSet::with_capacity(changes.len());
    for (index, change) in changes.iter().enumerate() {
        let refuse = |field, value: String, problem| DeviceError::InvalidChange {
            interface: interface.to_owned(),
            index,
            field,
            value,
            problem,
        };
        let key = change.public_key();
        if !seen.insert(key) {
            return Err(refuse(
                "public_key",
                key.to_string(),
                "the batch changes this peer twice",
            ));
        }
        if let PeerChange::Set(config) = change {
            if let Some(keepalive) = config.persistent_keepalive {
                let problem = if keepalive.subsec_nanos() != 0 {
                    Some("not whole seconds")
                } else if keepalive.is_zero() {
                    Some("zero; `None` turns keepalive off")
                } else if keepalive > MAX_PERSISTENT_KEEPALIVE {
                    Some("longer than 65535 s")
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(refuse(
                        "persistent_keepalive",
                        format!("{keepalive:?}"),
                        problem,
                    ));
                }
            }
            if config.allowed_ips.len() > MAX_ALLOWED_IPS {
                return Err(refuse(
                    "allowed_ips",
                    format!("{} networks", config.allowed_ips.len()),
                    "more than MAX_ALLOWED_IPS (10000)",
                ));
            }
        }
    }
    Ok(())
}

/// The shortest and longest timeouts a backend takes: a zero one would fail every call, and
/// one of years would overflow the clock's arithmetic.
pub(crate) fn clamp_timeout(timeout: Duration) -> Duration {
    timeout.clamp(Duration::from_millis(1), Duration::from_secs(3600))
}

/// The keepalive in whole seconds, 0 for off (what both protocols write). Only called on a
/// checked batch, so the value fits.
pub(crate) fn keepalive_secs(keepalive: Option<Duration>) -> u64 {
    keepalive.map_or(0, |k| k.as_secs())
}

/// A decimal number of ASCII digits only (no sign, no spaces): `str::parse` alone takes `+5`.
pub(crate) fn parse_decimal(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// An endpoint as both tools write one: `192.0.2.1:51820`, `[2001:db8::1]:51820`, or with a
/// numeric IPv6 zone, `[fe80::1%3]:51820`.
pub(crate) fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    if let Some(rest) = text.strip_prefix('[')
        && let Some((inside, port)) = rest.split_once(']')
        && let Some((address, zone)) = inside.split_once('%')
    {
        let address: Ipv6Addr = address.parse().ok()?;
        let scope_id = u32::try_from(parse_decimal(zone)?).ok()?;
        let port = u16::try_from(parse_decimal(port.strip_prefix(':')?)?).ok()?;
        return Some(SocketAddr::V6(SocketAddrV6::new(
            address, port, 0, scope_id,
        )));
    }
    text.parse().ok()
}

/// `UNIX_EPOCH` plus a time, or `None` for 0 (never) and for a time `SystemTime` cannot hold.
pub(crate) fn handshake_time(secs: u64, nanos: u32) -> Result<Option<SystemTime>, ()> {
    if secs == 0 && nanos == 0 {
        return Ok(None);
    }
    SystemTime::UNIX_EPOCH
        .checked_add(Duration::new(secs, nanos))
        .map(Some)
        .ok_or(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> PublicKey {
        PublicKey::from_bytes([n; 32])
    }

    #[test]
    fn names_linux_refuses_are_refused_with_the_reason() {
        for (name, problem) in [
            ("", "it is empty"),
            ("sixteen-bytes-xx", "it is longer than 15 bytes"),
            (".", "`.` and `..` are directories"),
            ("..", "`.` and `..` are directories"),
            ("a/b", "it contains `/`"),
            ("a\0b", "it contains a NUL byte"),
            ("wg:0", "it contains `:`"),
            ("wg 0", "it contains white space or a control character"),
            ("wg\n0", "it contains white space or a control character"),
            ("-h", "it starts with `-`"),
        ] {
            match check_name(name) {
                Err(DeviceError::InvalidName { problem: found, .. }) => {
                    assert_eq!(found, problem, "{name:?}");
                }
                other => panic!("{name:?}: {other:?}"),
            }
        }
        for name in ["wg0", "a", "fifteen-bytes-x", "wg.mesh", "wg_0-1", "é"] {
            assert!(check_name(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn a_refused_name_is_shown_escaped_and_bounded() {
        let err = check_name("a\nb").unwrap_err();
        assert_eq!(
            err.to_string(),
            "`a\\nb`: not an interface name: it contains white space or a control character"
        );
        let long = "é".repeat(100);
        let err = check_name(&long).unwrap_err();
        assert_eq!(err.interface().len(), 64);
    }

    #[test]
    fn a_batch_is_checked_whole_before_anything_is_sent() {
        let mut good = PeerConfig::new(key(1));
        good.persistent_keepalive = Some(Duration::from_secs(65_535));
        let mut bad = PeerConfig::new(key(2));
        bad.persistent_keepalive = Some(Duration::from_secs(65_536));
        assert!(check_changes("wg0", &[good.clone().into()]).is_ok());
        let err = check_changes("wg0", &[good.clone().into(), bad.into()]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "wg0: change 1, persistent_keepalive `65536s`: longer than 65535 s; nothing was sent"
        );

        for (keepalive, problem) in [
            (Duration::from_millis(1500), "not whole seconds"),
            (Duration::ZERO, "zero; `None` turns keepalive off"),
        ] {
            let mut config = PeerConfig::new(key(3));
            config.persistent_keepalive = Some(keepalive);
            match check_changes("wg0", &[config.into()]) {
                Err(DeviceError::InvalidChange {
                    index: 0,
                    field: "persistent_keepalive",
                    problem: found,
                    ..
                }) => assert_eq!(found, problem),
                other => panic!("{keepalive:?}: {other:?}"),
            }
        }

        let twice = check_changes("wg0", &[good.into(), PeerChange::Remove(key(1))]).unwrap_err();
        assert!(matches!(
            twice,
            DeviceError::InvalidChange {
                index: 1,
                field: "public_key",
                ..
            }
        ));

        let mut many = PeerConfig::new(key(4));
        many.allowed_ips = vec!["10.0.0.0/8".parse().unwrap(); MAX_ALLOWED_IPS + 1];
        assert!(matches!(
            check_changes("wg0", &[many.into()]),
            Err(DeviceError::InvalidChange {
                field: "allowed_ips",
                ..
            })
        ));
    }

    #[test]
    fn endpoints_parse_as_both_tools_write_them() {
        assert_eq!(
            parse_endpoint("10.250.0.2:51820"),
            Some("10.250.0.2:51820".parse().unwrap())
        );
        assert_eq!(
            parse_endpoint("[::1]:51820"),
            Some("[::1]:51820".parse().unwrap())
        );
        let zoned = parse_endpoint("[fe80::1%3]:5000").unwrap();
        assert_eq!(
            zoned,
            SocketAddr::V6(SocketAddrV6::new("fe80::1".parse().unwrap(), 5000, 0, 3))
        );
        assert_eq!(zoned.to_string(), "[fe80::1%3]:5000");
        for bad in [
            "",
            "garbage",
            "10.0.0.1",
            "10.0.0.1:70000",
            "[fe80::1%eth0]:5000",
            "[fe80::1%]:5000",
            "[fe80::1%3]5000",
            "[fe80::1%3]:+5",
            "[10.0.0.1%3]:5",
            "::1:5",
        ] {
            assert_eq!(parse_endpoint(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decimals_are_digits_only() {
        assert_eq!(parse_decimal("0"), Some(0));
        assert_eq!(parse_decimal("18446744073709551615"), Some(u64::MAX));
        for bad in ["", "+5", "-1", " 5", "5 ", "18446744073709551616", "0x10"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn handshake_times_never_overflow() {
        assert_eq!(handshake_time(0, 0), Ok(None));
        assert_eq!(
            handshake_time(1, 5),
            Ok(Some(SystemTime::UNIX_EPOCH + Duration::new(1, 5)))
        );
        assert_eq!(handshake_time(u64::MAX, 999_999_999), Err(()));
    }

    #[test]
    fn bounded_cuts_at_a_character() {
        assert_eq!(bounded("abc", 3), "abc");
        assert_eq!(bounded("abcd", 3), "abc…");
        assert_eq!(bounded("ééé", 2), "éé…");
    }
}
