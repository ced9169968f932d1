//! Network namespaces with a wireguard-go interface in each, on one bridge: the rig the device
//! tests run on.
//!
//! A [`Mesh`] of N nodes is N + 1 namespaces of its own: a hub holding a bridge, and one per
//! node, joined to the hub's bridge by a veth pair (the node's end is `eth0`, with 10.250.0.K/24
//! and fd00:250::K/64, K = node + 1). Each node runs `wireguard-go -f` on an interface of a
//! name unique on the host (the UAPI socket directory is shared by every namespace), with a
//! fresh key pair, listen port 51820, tunnel address 10.99.0.K/24, up. Nothing is created in
//! the host's own namespace, and every packet stays inside the mesh's namespaces.
//!
//! Dropping the mesh (also while a failed assertion unwinds) stops its own wireguard-go
//! processes by PID and deletes its own namespaces, which takes their links with them. Every
//! wait is a poll with a deadline.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use peerstore::{IpNet, PublicKey};

/// The port every node's interface listens on (each node has a namespace of its own).
pub const WG_PORT: u16 = 51820;

/// How long setting up one piece of the rig may take before the test fails.
const SETUP_DEADLINE: Duration = Duration::from_secs(5);

/// Why the rig cannot be built here, if it cannot.
pub fn missing() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid != Some("0") {
        return Some("not running as root (network namespaces need it)".into());
    }
    if !Path::new("/dev/net/tun").exists() {
        return Some("no /dev/net/tun (wireguard-go needs a TUN device)".into());
    }
    for program in ["wireguard-go", "wg", "ip", "ping"] {
        if find_program(program).is_none() {
            return Some(format!("`{program}` is not installed (not found on PATH)"));
        }
    }
    None
}

/// Whether the test may go on: prints one line saying why not and returns false, or fails
/// the test instead when `CI=true`.
pub fn ready(test: &str) -> bool {
    match missing() {
        None => true,
        Some(why) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{test}: cannot run the WireGuard device tests here: {why}")
        }
        Some(why) => {
            eprintln!("skipping {test}: {why}");
            false
        }
    }
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs a program to completion and returns its standard output; fails the test if it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    run_with_input(program, args, None)
}

fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run `{program}`: {e}"));
    if let Some(input) = input {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(input.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write to `{program}`: {e}"));
    }
    let output = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for `{program}`: {e}"));
    assert!(
        output.status.success(),
        "`{program} {}` failed ({}): {}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// Polls `probe` every 10 ms until it gives a value, or `deadline` passes (`None`).
pub fn poll<T>(deadline: Duration, mut probe: impl FnMut() -> Option<T>) -> Option<T> {
    let started = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Some(value);
        }
        if started.elapsed() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Polls `probe` every 10 ms until it gives a value, and fails the test if `deadline` passes
/// first, saying what was waited for.
pub fn wait_for<T>(what: &str, deadline: Duration, probe: impl FnMut() -> Option<T>) -> T {
    poll(deadline, probe).unwrap_or_else(|| panic!("gave up after {deadline:?} waiting for {what}"))
}

/// One node of a mesh: a namespace with an underlay link and a wireguard-go interface.
pub struct Node {
    /// The node's namespace.
    pub namespace: String,
    /// Its WireGuard interface's name (unique on the host).
    pub interface: String,
    /// Its interface's public key.
    pub public_key: PublicKey,
    /// Its underlay addresses, on `eth0`.
    pub underlay_v4: Ipv4Addr,
    /// The same, IPv6.
    pub underlay_v6: Ipv6Addr,
    /// Its address inside the tunnel, on the WireGuard interface.
    pub tunnel: Ipv4Addr,
    /// Its interface's private key, as `wg genkey` wrote it: to start it again with the
    /// same key.
    private_key: String,
}

impl Node {
    /// Where other nodes reach this one over IPv4.
    pub fn endpoint_v4(&self) -> SocketAddr {
        SocketAddr::new(self.underlay_v4.into(), WG_PORT)
    }

    /// Where other nodes reach this one over IPv6.
    pub fn endpoint_v6(&self) -> SocketAddr {
        SocketAddr::new(self.underlay_v6.into(), WG_PORT)
    }

    /// This node's tunnel address as the one network a peer routes to it.
    pub fn tunnel_net(&self) -> IpNet {
        IpNet::new(self.tunnel.into(), 32).expect("a /32")
    }

    /// Takes this node's IPv4 underlay address away: it can neither be reached at it nor
    /// send from it.
    pub fn remove_underlay_v4(&self) {
        let address = format!("{}/24", self.underlay_v4);
        run(
            "ip",
            &[
                "-n",
                &self.namespace,
                "addr",
                "del",
                &address,
                "dev",
                "eth0",
            ],
        );
    }

    /// Gives the node's IPv4 underlay address `to` in place of the one it has (same /24):
    /// the node moved. Other nodes reach it only at the new address from now on.
    pub fn move_underlay_v4(&mut self, to: Ipv4Addr) {
        // The old address first: deleting a subnet's primary address deletes its secondary
        // ones too, and the new one would be a secondary.
        self.remove_underlay_v4();
        let ns = ["-n", self.namespace.as_str()];
        let new = format!("{to}/24");
        run(
            "ip",
            &[&ns[..], &["addr", "add", &new, "dev", "eth0"]].concat(),
        );
        self.underlay_v4 = to;
    }

    /// Changes the port the node's interface listens on, as a NAT rebinding changes the port
    /// its peers see: it sends from the new port from now on.
    pub fn set_listen_port(&self, port: u16) {
        run(
            "wg",
            &["set", &self.interface, "listen-port", &port.to_string()],
        );
    }

    /// The interface's UAPI socket.
    pub fn socket(&self) -> PathBuf {
        socket_path(&self.interface)
    }

    /// Pings `to` from this node's namespace until one echo comes back or `deadline` passes.
    pub fn ping_until_answered(&self, to: Ipv4Addr, deadline: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < deadline {
            let answered = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &self.namespace,
                    "ping",
                    "-q",
                    "-n",
                    "-c",
                    "1",
                ])
                .args(["-W", "1", &to.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if answered {
                return true;
            }
        }
        false
    }
}

fn socket_path(interface: &str) -> PathBuf {
    Path::new("/var/run/wireguard").join(format!("{interface}.sock"))
}

/// Namespaces, links and wireguard-go processes of one test, torn down when dropped.
pub struct Mesh {
    /// The nodes, in the order they were made (node K has addresses ending in K + 1).
    pub nodes: Vec<Node>,
    namespaces: Vec<String>,
    daemons: Vec<(Child, String)>,
}

/// What every namespace of [`Mesh::new`] is named after: `peerstore-PID-N-…`.
pub const PREFIX: &str = "peerstore";

impl Mesh {
    /// A mesh of `count` nodes (1 to 9), each with its interface up and configured with a key
    /// and a listen port, and no peers.
    pub fn new(count: usize) -> Mesh {
        Mesh::named(PREFIX, count)
    }

    /// [`new`](Self::new), with namespaces named `PREFIX-PID-N-…` (`prefix` is a few ASCII
    /// letters and digits: a name Linux takes).
    pub fn named(prefix: &str, count: usize) -> Mesh {
        assert!((1..=9).contains(&count), "1 to 9 nodes");
        assert!(
            !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_alphanumeric()),
            "{prefix:?}: letters and digits only"
        );
        static MESHES: AtomicU32 = AtomicU32::new(0);
        let id = MESHES.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Built step by step inside the value, so that a failure halfway tears down what was
        // made until then.
        let mut mesh = Mesh {
            nodes: Vec::new(),
            namespaces: Vec::new(),
            daemons: Vec::new(),
        };
        let hub = mesh.namespace(format!("{prefix}-{pid}-{id}-hub"));
        run("ip", &["-n", &hub, "link", "add", "br0", "type", "bridge"]);
        run("ip", &["-n", &hub, "link", "set", "br0", "up"]);
        for index in 0..count {
            let k = u8::try_from(index + 1).expect("at most 9 nodes");
            let namespace = mesh.namespace(format!("{prefix}-{pid}-{id}-n{k}"));
            let veth = format!("h{k}");
            run(
                "ip",
                &[
                    "-n", &hub, "link", "add", &veth, "type", "veth", "peer", "name", "eth0",
                    "netns", &namespace,
                ],
            );
            run(
                "ip",
                &["-n", &hub, "link", "set", &veth, "master", "br0", "up"],
            );
            let underlay_v4 = Ipv4Addr::new(10, 250, 0, k);
            let underlay_v6 = Ipv6Addr::new(0xfd00, 0x250, 0, 0, 0, 0, 0, u16::from(k));
            let ns = ["-n", namespace.as_str()];
            run("ip", &[&ns[..], &["link", "set", "lo", "up"]].concat());
            run(
                "ip",
                &[
                    &ns[..],
                    &["addr", "add", &format!("{underlay_v4}/24"), "dev", "eth0"],
                ]
                .concat(),
            );
            // No duplicate address detection: the address is usable at once.
            run(
                "ip",
                &[
                    &ns[..],
                    &[
                        "addr",
                        "add",
                        &format!("{underlay_v6}/64"),
                        "dev",
                        "eth0",
                        "nodad",
                    ],
                ]
                .concat(),
            );
            run("ip", &[&ns[..], &["link", "set", "eth0", "up"]].concat());

            let interface = format!("pw{pid:x}m{id:x}n{k}");
            assert!(interface.len() <= 15, "{interface}: too long for Linux");
            let private_key = run("wg", &["genkey"]);
            let public_key = run_with_input("wg", &["pubkey"], Some(&private_key));
            let public_key: PublicKey = public_key.trim().parse().expect("wg pubkey's key");
            let node = Node {
                namespace,
                interface,
                public_key,
                underlay_v4,
                underlay_v6,
                tunnel: Ipv4Addr::new(10, 99, 0, k),
                private_key,
            };
            mesh.bring_up(&node);
            mesh.nodes.push(node);
        }
        mesh
    }

    /// Starts a node's wireguard-go and configures its interface: key, listen port, tunnel
    /// address, up.
    fn bring_up(&mut self, node: &Node) {
        let ns = ["-n", node.namespace.as_str()];
        let interface = node.interface.as_str();
        self.start_daemon(&node.namespace, interface);
        run_with_input(
            "wg",
            &[
                "set",
                interface,
                "listen-port",
                &WG_PORT.to_string(),
                "private-key",
                "/dev/stdin",
            ],
            Some(&node.private_key),
        );
        let tunnel = format!("{}/24", node.tunnel);
        run(
            "ip",
            &[&ns[..], &["addr", "add", &tunnel, "dev", interface]].concat(),
        );
        run("ip", &[&ns[..], &["link", "set", interface, "up"]].concat());
    }

    /// Kills node `index`'s wireguard-go (SIGKILL: it dies as a crashed daemon does, its
    /// interface with it) and waits until it is gone.
    pub fn kill(&mut self, index: usize) {
        let interface = self.nodes[index].interface.clone();
        if let Some(at) = self.daemons.iter().position(|(_, name)| *name == interface) {
            let (mut child, _) = self.daemons.remove(at);
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(socket_path(&interface));
    }

    /// Starts node `index` again after [`kill`](Self::kill): a fresh wireguard-go with the
    /// same key, listen port and tunnel address, and no peers.
    pub fn restart(&mut self, index: usize) {
        let node = Node {
            namespace: self.nodes[index].namespace.clone(),
            interface: self.nodes[index].interface.clone(),
            private_key: self.nodes[index].private_key.clone(),
            ..self.nodes[index]
        };
        self.bring_up(&node);
    }

    fn namespace(&mut self, name: String) -> String {
        run("ip", &["netns", "add", &name]);
        self.namespaces.push(name.clone());
        name
    }

    /// Starts `wireguard-go -f INTERFACE` inside `namespace` and waits for its socket.
    fn start_daemon(&mut self, namespace: &str, interface: &str) {
        // `ip netns exec` enters the namespace and executes the program: the child's PID is
        // wireguard-go's own.
        let child = Command::new("ip")
            .args(["netns", "exec", namespace, "wireguard-go", "-f", interface])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start wireguard-go");
        self.daemons.push((child, interface.to_owned()));
        let socket = socket_path(interface);
        let (child, _) = self.daemons.last_mut().expect("just pushed");
        wait_for(
            &format!("wireguard-go's socket {}", socket.display()),
            SETUP_DEADLINE,
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    panic!("wireguard-go for {interface} exited at start: {status}");
                }
                UnixStream::connect(&socket).ok()
            },
        );
    }
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for (child, interface) in &mut self.daemons {
            // SIGTERM lets wireguard-go remove its socket and interface; SIGKILL if it lingers.
            let terminated = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            let started = Instant::now();
            let mut exited = false;
            while terminated && started.elapsed() < Duration::from_secs(2) {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    exited = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            if !exited {
                let _ = child.kill();
                let _ = child.wait();
            }
            let _ = std::fs::remove_file(socket_path(interface));
        }
        for namespace in self.namespaces.iter().rev() {
            let deleted = Command::new("ip")
                .args(["netns", "del", namespace])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if !deleted {
                eprintln!("could not delete network namespace {namespace}");
            }
        }
    }
}
