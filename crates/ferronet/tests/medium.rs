//! `try_new` with a driver whose medium is not enabled returns a typed error instead of
//! panicking. Runs only in builds without `medium-ieee802154`; `scripts/test.sh` runs it with
//! `--no-default-features --features tcp,proto-ipv4,medium-ethernet`.
#![cfg(not(feature = "medium-ieee802154"))]

use ferronet::{Config, NewStackError, StackResources};
use ferronet_sim::link::{Endpoint, LinkConfig, pair};

#[test]
fn try_new_rejects_an_unsupported_medium() {
    let (dev, _peer, _link) = pair(
        LinkConfig::ieee802154(),
        Endpoint::Ieee802154([2, 0, 0, 0, 0, 0, 0, 1]),
        Endpoint::Ieee802154([2, 0, 0, 0, 0, 0, 0, 2]),
    )
    .expect("a valid link");
    let mut resources = StackResources::<2>::new();
    match ferronet::try_new(dev, Config::default(), &mut resources, 1) {
        Err(e @ NewStackError::UnsupportedMedium(_)) => {
            assert!(e.to_string().contains("medium"), "{e}");
        }
        Err(e) => panic!("unexpected error {e:?}"),
        Ok(_) => panic!("an IEEE 802.15.4 device was accepted without medium-ieee802154"),
    }
}
