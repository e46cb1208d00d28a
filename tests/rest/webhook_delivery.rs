//! Webhook delivery: signed POSTs to a real receiver on 127.0.0.1, retries until a
//! receiver failing twice gets the event, and events that survive a worker dying
//! mid-attempt and a time without any worker.

use std::time::Duration;

use theraroom::webhooks::settings::lease_for;
use theraroom::webhooks::{DeliveryConfig, Worker};

use super::webhook_receiver::Receiver;
use super::webhooks::{hook_path, log, set_hook, settled_log, with_loopback, LOOPBACK};
use super::*;

/// A worker that retries after 100 ms (three times) and looks every 50 ms.
fn fast_config(timeout: Duration) -> DeliveryConfig {
    let mut config = DeliveryConfig::new(LOOPBACK);
    config.retry_schedule = vec![Duration::from_millis(100); 3];
    config.poll_interval = Duration::from_millis(50);
    config.timeout = timeout;
    config.lease = lease_for(timeout);
    config
}

fn worker(app: &TestApp, timeout: Duration) -> tokio::task::JoinHandle<()> {
    Worker::new(app.store.clone(), fast_config(timeout))
        .expect("worker")
        .spawn()
}

both_dbs!(events_are_signed_delivered_and_logged, |app| async move {
    let app = with_loopback(app);
    let mut receiver = Receiver::start(&[], false).await;
    let org = app.org("Signed Practice", false).await;
    let secret = set_hook(&app, &org, &receiver.url()).await;
    let therapist = app.therapist(&org.id, "Dr Hildegard Peplau").await;
    let session = app.session(&therapist, "Grief work with Jane Roe").await;
    let ping = app
        .post(
            &format!("{}/test", hook_path(&org.id)),
            Some(&org.admin.token),
            None,
        )
        .await;
    let ping_id = ping.expect(202)["event_id"].as_str().unwrap().to_string();
    let task = worker(&app, Duration::from_secs(5));
    let first = receiver.next().await;
    let second = receiver.next().await;
    let entries = settled_log(&app, &org).await;
    task.abort();
    let mut got = [first, second];
    got.sort_by_key(|r| r.json()["type"] != json!("session.started"));
    for r in &got {
        assert!(
            r.signature_ok(&secret),
            "bad signature: {}",
            r.header("theraroom-signature")
        );
        assert!(!r.signature_ok("whsec_not-the-secret"));
        assert_eq!(
            r.header("theraroom-event-id"),
            r.json()["id"].as_str().unwrap()
        );
        assert_eq!(r.header("content-type"), "application/json");
        assert_eq!(r.json()["organization_id"], json!(org.id));
        for private in ["Hildegard", "Peplau", "Grief", "Jane", "@"] {
            assert!(!r.body.contains(private), "{private} in {}", r.body);
        }
    }
    let started = got[0].json();
    assert_eq!(started["type"], json!("session.started"));
    assert_eq!(started["data"]["session_id"], session["id"]);
    assert_eq!(started["data"]["therapist_id"], json!(therapist.id));
    assert_eq!(got[1].json()["type"], json!("ping"));
    assert_eq!(got[1].json()["id"], json!(ping_id));
    assert_eq!(entries.len(), 2);
    for e in &entries {
        assert_eq!(e["status"], json!("delivered"), "{e}");
        assert_eq!(e["attempts"], json!(1));
        assert_eq!(e["last_status_code"], json!(200));
        assert!(e["delivered_at"].is_string() && e["next_attempt_at"].is_null());
        assert_eq!(e["attempt_log"].as_array().unwrap().len(), 1);
    }
});

both_dbs!(
    a_receiver_failing_twice_gets_the_event_on_the_third_try,
    |app| async move {
        let app = with_loopback(app);
        let mut receiver = Receiver::start(&[500, 503], false).await;
        let org = app.org("Retry Practice", false).await;
        let secret = set_hook(&app, &org, &receiver.url()).await;
        let ping = app
            .post(
                &format!("{}/test", hook_path(&org.id)),
                Some(&org.admin.token),
                None,
            )
            .await;
        let id = ping.expect(202)["event_id"].as_str().unwrap().to_string();
        let task = worker(&app, Duration::from_secs(5));
        let tries = [
            receiver.next().await,
            receiver.next().await,
            receiver.next().await,
        ];
        let entry = settled_log(&app, &org).await[0].clone();
        task.abort();
        for t in &tries {
            assert_eq!(t.header("theraroom-event-id"), id);
            assert!(t.signature_ok(&secret));
        }
        assert_eq!(entry["status"], json!("delivered"), "{entry}");
        assert_eq!(entry["attempts"], json!(3));
        let codes: Vec<Value> = entry["attempt_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status_code"].clone())
            .collect();
        assert_eq!(codes, vec![json!(500), json!(503), json!(200)]);
        assert!(
            receiver.drain().is_empty(),
            "delivered more than three times"
        );
    }
);

both_dbs!(
    events_survive_a_worker_that_dies_and_one_that_never_ran,
    |app| async move {
        let app = with_loopback(app);
        let mut receiver = Receiver::start(&[], true).await;
        let org = app.org("Restart Practice", false).await;
        let secret = set_hook(&app, &org, &receiver.url()).await;
        let test = format!("{}/test", hook_path(&org.id));
        let first = app.post(&test, Some(&org.admin.token), None).await;
        let first = first.expect(202)["event_id"].as_str().unwrap().to_string();
        // A worker claims it, the receiver never answers, and the worker dies mid-attempt.
        let dying = worker(&app, Duration::from_secs(30));
        assert_eq!(receiver.next().await.header("theraroom-event-id"), first);
        dying.abort();
        let _ = dying.await;
        // While no worker runs, another event is queued.
        let second = app.post(&test, Some(&org.admin.token), None).await;
        let second = second.expect(202)["event_id"].as_str().unwrap().to_string();
        let pending = log(&app, &org).await;
        assert!(pending.iter().all(|e| e["status"] == json!("pending")));
        // The claim of the dead worker runs out (its lease, shortened here); a new worker
        // (a restarted server) sends both.
        sqlx::query("UPDATE webhook_events SET next_attempt_at = 0 WHERE id = $1")
            .bind(&first)
            .execute(app.store.pool())
            .await
            .unwrap();
        let task = worker(&app, Duration::from_secs(5));
        let mut ids = vec![receiver.next().await, receiver.next().await];
        task.abort();
        assert!(ids.iter().all(|r| r.signature_ok(&secret)));
        let mut ids: Vec<String> = ids
            .drain(..)
            .map(|r| r.header("theraroom-event-id").to_string())
            .collect();
        ids.sort();
        let mut want = vec![first, second];
        want.sort();
        assert_eq!(ids, want);
    }
);
