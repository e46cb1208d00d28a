//! Revoked tokens over the real server: signing out over REST closes the live `/rtc`
//! connection opened with that token (fatal `token_revoked`, close 4401), the token no
//! longer joins, and other participants stay. Run inside a private network namespace:
//!
//! ```sh
//! cargo test -p theraroom --test rtc_tokens --no-run
//! unshare -n sh -c 'ip link set lo up; cargo test -p theraroom --test rtc_tokens --offline'
//! ```

mod rtc_common;

use std::time::Duration;

use rtc_common::{init_tracing, join, refused, Server, SERIAL};
use theraroom_load::{Publish, ServerMessage};

/// Upper bound of the test.
const TEST_LIMIT: Duration = Duration::from_secs(60);
/// How long a signaling event may take.
const EVENT_LIMIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_closes_the_live_socket_of_that_token() {
    let _serial = SERIAL.lock().await;
    init_tracing();
    tokio::time::timeout(TEST_LIMIT, async {
        let server = Server::start().await;
        let (_, therapist_token) = server.therapist();
        let session = server.session(therapist_token, 3).await;
        let g = server.guest(&session.share_token, "Signing Out").await;
        let t = join(&server, &session.id, therapist_token, Publish::NOTHING)
            .await
            .expect("therapist joins");
        let guest = join(&server, &session.id, &g.token, Publish::NOTHING)
            .await
            .expect("guest joins");

        let (status, body) = server
            .call("POST", "/api/auth/logout", &g.token, None)
            .await;
        assert_eq!(status, 204, "{body}");
        let close = tokio::time::timeout(EVENT_LIMIT, guest.wait_closed())
            .await
            .expect("the revoked token's socket is closed");
        assert_eq!((close.code, close.reason.as_str()), (4401, "token_revoked"));
        assert!(
            guest.event_log().iter().any(|m| matches!(
                m,
                ServerMessage::Error { code, fatal: true, .. } if code == "token_revoked"
            )),
            "{:?}",
            guest.event_log()
        );
        guest.close().await;
        // The token no longer enters, nor works over REST.
        let (code, close) = refused(&server, &session.id, &g.token).await;
        assert_eq!(code, "token_revoked");
        assert_eq!(close.map(|c| c.code), Some(4401));
        let (status, body) = server
            .call("GET", "/api/turn-credentials", &g.token, None)
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some("token_revoked"))
        );
        // The therapist, with another token, is still connected.
        assert!(t.close_info().is_none(), "{:?}", t.close_info());
        t.close().await;
        server.stop().await;
    })
    .await
    .expect("test finished in time");
}
