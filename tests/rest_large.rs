//! A large REST body (50 MB) through two brama security servers, both ways, streamed through
//! spools and into the message log (time-stamped): the servers' memory stays flat. A test binary
//! of its own, so no other test's allocations blur the peak-memory figure.

mod common;

use common::large::{echo_fifty_megabytes, SIZE};

#[tokio::test]
async fn fifty_megabytes_stream_through_with_flat_memory() {
    let p = common::rest::start_rest_pair(
        "",
        "[log]\nmessages_dir = \"messages\"\ntimestamp_interval_s = 1",
        "",
    )
    .await;
    echo_fifty_megabytes(&p).await;

    // Both records were logged with the body, and are time-stamped.
    let log = p.ss1.gateway.message_log().unwrap();
    assert!(
        brama::message_log::timestamper::until_stamped(log, std::time::Duration::from_secs(60))
            .await
    );
    let files =
        common::logged_containers(&p.net.path().join("messages"), &p.net.path().join("logged"));
    assert_eq!(files.len(), 2);
    let gc = brama::globalconf::GlobalConf::load_dir(&p.net.path().join("globalconf")).unwrap();
    let trust = brama::sign::verify::TrustStore::from_globalconf(&gc);
    for f in files {
        let c = brama::sign::asic::read(&std::fs::read(&f).unwrap()).unwrap();
        assert_eq!(
            c.attachments.last().map(Vec::len),
            Some(SIZE),
            "{}",
            f.display()
        );
        let v = brama::sign::asic::verify_container(&c, &trust).unwrap();
        assert!(v.time_stamped_at.is_some());
    }
}
