//! The connection limits of the stream listeners (TCP, DoT, DoH, one shared count): the global
//! cap (a semaphore), the per-client cap with its slot released when a connection ends, the
//! idle timeout, and what each connection needs (panic containment, PROXY v2 trust).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::contain::Containment;
use super::proxy::Proxies;

/// TCP connection limits shared by the accept loops.
#[derive(Clone)]
pub(super) struct TcpLimits {
    pub(super) total: Arc<Semaphore>,
    pub(super) per_client:
        Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    pub(super) per_client_max: usize,
    pub(super) idle: Duration,
    pub(super) contain: Containment,
    pub(super) proxies: Proxies,
}

impl TcpLimits {
    /// A connection slot of client `ip`, or `None` when it holds its cap already.
    pub(super) fn slot(&self, ip: std::net::IpAddr) -> Option<ClientSlot> {
        let mut m = match self.per_client.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let n = m.entry(ip).or_insert(0);
        if *n >= self.per_client_max {
            tracing::debug!(
                client_limit = self.per_client_max,
                "tcp connection over the per-client cap closed"
            );
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            map: self.per_client.clone(),
            ip,
        })
    }
}

/// Releases a client's connection slot when its connection ends.
pub(super) struct ClientSlot {
    map: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    ip: std::net::IpAddr,
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if let Ok(mut m) = self.map.lock()
            && let Some(n) = m.get_mut(&self.ip)
        {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}
