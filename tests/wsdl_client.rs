//! The generated DRACS client against brama's registry simulator, over real HTTP.

mod common;

use std::time::Duration;

use brama::registries::dracs::{self, GetBirthRecord, GetBirthRecordOp};
use brama::wsdl::runtime::{ClientError, HttpTransport, XRoadHeader};

use common::*;

fn header() -> XRoadHeader {
    XRoadHeader::for_operation::<GetBirthRecordOp>(
        sub("00000001", "DIIA"),
        sub("00000002", "DRACS"),
    )
}

#[tokio::test]
async fn get_birth_record_from_the_simulator() {
    let sim = start_sim(Duration::ZERO).await;
    let t = HttpTransport::new(&format!("http://{}/dracs", sim.addr)).unwrap();

    let req = GetBirthRecord {
        record_number: Some("№ 1234".into()),
        ..Default::default()
    };
    assert_eq!(req.validate(), []);
    let resp = dracs::get_birth_record(&t, &header(), &req).await.unwrap();
    let record = resp.birth_record.expect("a birth record");
    assert_eq!(record.act_record_number, "№ 1234");
    assert_eq!(record.birth_place.country, "Україна");
    assert!(["M", "F"].contains(&record.child.sex.as_str()));
    assert_eq!(resp.error, None);
    assert_eq!(record.validate(), []);
    // Deterministic: the same request gets the same answer.
    let again = dracs::get_birth_record(&t, &header(), &req).await.unwrap();
    assert_eq!(again.birth_record, Some(record));

    // A business "not found" is a response, not a fault.
    let zero = GetBirthRecord {
        record_number: Some("№ 0".into()),
        ..Default::default()
    };
    let resp = dracs::get_birth_record(&t, &header(), &zero).await.unwrap();
    assert_eq!(resp.error.unwrap().code, "NOT_FOUND");

    // A request the registry cannot understand is a final Client fault.
    let empty = GetBirthRecord::default();
    assert_eq!(empty.validate().len(), 1, "the choice is unmet");
    let e = dracs::get_birth_record(&t, &header(), &empty)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ClientError::Fault { code, .. } if code.starts_with("Client")),
        "{e}"
    );
    assert!(!e.retryable());
    assert_eq!(sim.stats.faults(), 1);
}
