//! A large REST body (50 MB) logged into the database the nodes share (`[store] url`): the body
//! goes into a large object a chunk at a time, so the servers' memory stays flat as in
//! `rest_large`, and the record comes back whole and time-stamped from `GET /asic`. A test
//! binary of its own, so no other test's allocations blur the peak-memory figure.

mod common;

use common::large::{echo_fifty_megabytes, SIZE};

#[tokio::test]
async fn fifty_megabytes_are_logged_into_the_shared_database_with_flat_memory() {
    let Some(pg) = common::pg::Pg::start() else {
        return;
    };
    let p = common::rest::start_rest_pair(
        "",
        &format!(
            "[log]\nmessages_dir = \"messages\"\ntimestamp_interval_s = 1\n\
             [store]\nurl = \"{}\"\nnode = \"a\"\n",
            pg.url
        ),
        "",
    )
    .await;
    let query_id = echo_fifty_megabytes(&p).await;

    let log = p.ss1.gateway.message_log().unwrap();
    assert!(
        brama::message_log::timestamper::until_stamped(log, std::time::Duration::from_secs(60))
            .await
    );
    // Nothing of it left in files: the upload's file goes once the database has it.
    let incoming = p.net.path().join("messages/incoming");
    let left: Vec<_> = std::fs::read_dir(&incoming)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let gc = brama::globalconf::GlobalConf::load_dir(&p.net.path().join("globalconf")).unwrap();
    let trust = brama::sign::verify::TrustStore::from_globalconf(&gc);
    for which in ["requestOnly", "responseOnly"] {
        let path = format!(
            "/asic?queryId={query_id}&xRoadInstance=SEVDEIR-TEST&memberClass=GOV\
             &memberCode=00000001&subsystemCode=DIIA&unique&{which}"
        );
        let r = common::http::get(p.ss1.client_http.unwrap(), &path, &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let c = brama::sign::asic::read(&r.body).unwrap();
        assert_eq!(c.attachments.last().map(Vec::len), Some(SIZE), "{which}");
        let v = brama::sign::asic::verify_container(&c, &trust).unwrap();
        assert!(v.time_stamped_at.is_some(), "{which}");
    }
}
