//! An in-memory [`Device`] for the reconciler's and the monitor's unit tests: it applies
//! batches as the backends document (an endpoint of `None` leaves the peer's, allowed IPs are
//! replaced with host bits cleared), keeps every batch it was sent, and lets a test play
//! WireGuard (a handshake, bytes, a roam).

use std::sync::{Mutex, PoisonError};
use std::time::SystemTime;

use super::{Device, DeviceError, DevicePeer, PeerChange, check_changes};
use crate::PublicKey;
use std::net::SocketAddr;

#[derive(Debug, Default)]
pub(crate) struct FakeDevice {
    peers: Mutex<Vec<DevicePeer>>,
    batches: Mutex<Vec<Vec<PeerChange>>>,
    /// When set, the next `apply` fails (and changes nothing).
    pub(crate) refuse_next: Mutex<bool>,
}

impl FakeDevice {
    pub(crate) fn new() -> Self {
        FakeDevice::default()
    }

    /// Every batch sent so far, in order.
    pub(crate) fn batches(&self) -> Vec<Vec<PeerChange>> {
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The peer as the device has it.
    pub(crate) fn peer(&self, key: PublicKey) -> Option<DevicePeer> {
        self.lock().iter().find(|p| p.public_key == key).cloned()
    }

    /// Adds a peer as an operator would, behind any reconciler's back.
    pub(crate) fn insert(&self, peer: DevicePeer) {
        let mut peers = self.lock();
        peers.retain(|p| p.public_key != peer.public_key);
        peers.push(peer);
    }

    /// Changes a peer as WireGuard would (a handshake, bytes, a roam).
    pub(crate) fn with(&self, key: PublicKey, change: impl FnOnce(&mut DevicePeer)) {
        let mut peers = self.lock();
        let peer = peers
            .iter_mut()
            .find(|p| p.public_key == key)
            .expect("the device has the peer");
        change(peer);
    }

    /// A handshake completed at `at`, from `endpoint` (WireGuard takes the address).
    pub(crate) fn handshake(&self, key: PublicKey, endpoint: SocketAddr, at: SystemTime) {
        self.with(key, |peer| {
            peer.endpoint = Some(endpoint);
            peer.last_handshake = Some(at);
            peer.rx_bytes += 92;
            peer.tx_bytes += 148;
        });
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<DevicePeer>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Device for FakeDevice {
    fn name(&self) -> &str {
        "fake0"
    }

    fn peers(&self) -> Result<Vec<DevicePeer>, DeviceError> {
        Ok(self.lock().clone())
    }

    fn apply(&self, changes: &[PeerChange]) -> Result<(), DeviceError> {
        check_changes(self.name(), changes)?;
        let mut refuse = self
            .refuse_next
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if std::mem::take(&mut *refuse) {
            return Err(DeviceError::Errno {
                interface: self.name().to_owned(),
                errno: -12,
                request: "set",
            });
        }
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(changes.to_vec());
        let mut peers = self.lock();
        for change in changes {
            match change {
                PeerChange::Remove(key) => peers.retain(|p| p.public_key != *key),
                PeerChange::Set(config) => {
                    let index = match peers.iter().position(|p| p.public_key == config.public_key) {
                        Some(index) => index,
                        None => {
                            peers.push(DevicePeer::new(config.public_key));
                            peers.len() - 1
                        }
                    };
                    let peer = &mut peers[index];
                    if config.endpoint.is_some() {
                        peer.endpoint = config.endpoint;
                    }
                    peer.allowed_ips = config.allowed_ips.iter().map(crate::IpNet::trunc).collect();
                    peer.persistent_keepalive = config.persistent_keepalive;
                }
            }
        }
        Ok(())
    }
}
