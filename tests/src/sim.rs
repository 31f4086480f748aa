//! Small helpers for tests on ferronet-sim's executor (virtual time).

use core::future::Future;

use embassy_time::Duration;
use ferronet::IpEndpoint;
use ferronet_sim::executor::Executor;

use crate::ip4;

/// Virtual time limit of every [`run`]: far beyond anything a test needs.
pub const LIMIT: Duration = Duration::from_secs(3600);

/// Runs `f` on `ex` (with the spawned runners), failing the test if it does not complete
/// within [`LIMIT`] of virtual time.
#[track_caller]
pub fn run<F: Future>(ex: &Executor<'_>, f: F) -> F::Output {
    match ex.try_run_until(f, LIMIT) {
        Ok(out) => out,
        Err(e) => panic!("hang: {e}"),
    }
}

/// 192.0.2.`host`:`port`.
pub fn ep4(host: u8, port: u16) -> IpEndpoint {
    IpEndpoint::new(ip4(host).into(), port)
}

/// Lets the runners exchange whatever is queued: 200 ms of virtual time.
pub fn settle(ex: &Executor<'_>) {
    ex.run_for(Duration::from_millis(200));
}
