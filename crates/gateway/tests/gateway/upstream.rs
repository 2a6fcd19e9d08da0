//! Connections to instances: pooled, reused, replaced when closed, closed when idle or unused.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::StatusCode;
use spread_gateway::{BackendSpec, GatewayConfig};

use crate::support::{Instance, TestGateway, bounded, eventually, one_shot_instance, route};

#[tokio::test]
async fn sequential_requests_reuse_one_connection_to_the_instance() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gw =
            TestGateway::start(vec![route("shop", &["shop.localhost"], vec![web.spec()])]).await;
        let client = gw.client();
        for _ in 0..20 {
            assert_eq!(
                client.get("shop.localhost", "/").await.status,
                StatusCode::OK
            );
        }
        assert_eq!(web.conns.accepted.load(Ordering::SeqCst), 1);
    })
    .await;
}

#[tokio::test]
async fn a_pooled_connection_the_instance_closed_is_not_used() {
    bounded("test", async {
        let (addr, accepted, _task) = one_shot_instance().await;
        let web = BackendSpec {
            id: "one-shot".into(),
            label: "web.1".into(),
            addr,
        };
        let gw = TestGateway::start(vec![route("shop", &["shop.localhost"], vec![web])]).await;
        let client = gw.client();
        for i in 0..20 {
            let reply = client.get("shop.localhost", "/").await;
            assert_eq!(
                (reply.status, reply.body.as_str()),
                (StatusCode::OK, "ok"),
                "request {i}"
            );
        }
        let body = bytes::Bytes::from_static(b"x=1");
        let reply = client.send("POST", "shop.localhost", "/", &[], body).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(accepted.load(Ordering::SeqCst), 21);
    })
    .await;
}

#[tokio::test]
async fn idle_connections_to_instances_are_closed_after_the_idle_timeout() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let config = GatewayConfig {
            upstream_idle_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let gw = TestGateway::with_config(
            config,
            vec![route("shop", &["shop.localhost"], vec![web.spec()])],
        )
        .await;
        assert_eq!(
            gw.client().get("shop.localhost", "/").await.status,
            StatusCode::OK
        );
        assert_eq!(web.conns.open.load(Ordering::SeqCst), 1);
        eventually(|| web.conns.open.load(Ordering::SeqCst) == 0).await;
    })
    .await;
}

#[tokio::test]
async fn a_removed_backend_closes_its_pooled_connections() {
    bounded("test", async {
        let (old, new) = (Instance::start("old").await, Instance::start("new").await);
        let gw =
            TestGateway::start(vec![route("shop", &["shop.localhost"], vec![old.spec()])]).await;
        let client = gw.client();
        assert_eq!(client.get("shop.localhost", "/").await.backend(), "old");
        assert_eq!(old.conns.open.load(Ordering::SeqCst), 1);
        gw.gateway
            .set_routes(vec![route("shop", &["shop.localhost"], vec![new.spec()])]);
        eventually(|| old.conns.open.load(Ordering::SeqCst) == 0).await;
        assert_eq!(client.get("shop.localhost", "/").await.backend(), "new");
    })
    .await;
}
