//! Balancing, passive health, retries, draining and route table swaps.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hyper::StatusCode;
use spread_gateway::{BackendSpec, GatewayConfig};

use crate::support::{Instance, TestGateway, bounded, dead_addr, resetting_instance, route};

/// Waits until `/slow` reaches one of the two instances; returns (holder, other).
async fn slow_lands<'a>(a: &'a Instance, b: &'a Instance) -> (&'a Instance, &'a Instance) {
    tokio::select! {
        () = a.slow_arrived.notified() => (a, b),
        () = b.slow_arrived.notified() => (b, a),
    }
}

#[tokio::test]
async fn new_requests_go_to_the_backend_with_fewer_in_flight() {
    bounded("test", async {
        let (a, b) = (Instance::start("a").await, Instance::start("b").await);
        let gw = TestGateway::start(vec![route(
            "shop",
            &["shop.localhost"],
            vec![a.spec(), b.spec()],
        )])
        .await;
        let client = gw.client();
        let slow = tokio::spawn({
            let client = client.clone();
            async move { client.get("shop.localhost", "/slow").await }
        });
        let (holder, other) = slow_lands(&a, &b).await;
        for _ in 0..10 {
            assert_eq!(
                client.get("shop.localhost", "/").await.backend(),
                other.name
            );
        }
        holder.release.add_permits(1);
        let slow = slow.await.unwrap();
        assert_eq!((slow.status, slow.backend()), (StatusCode::OK, holder.name));
    })
    .await;
}

#[tokio::test]
async fn equal_backends_share_the_load() {
    bounded("test", async {
        let (a, b) = (Instance::start("a").await, Instance::start("b").await);
        let gw = TestGateway::start(vec![route(
            "shop",
            &["shop.localhost"],
            vec![a.spec(), b.spec()],
        )])
        .await;
        let client = gw.client();
        for _ in 0..20 {
            assert_eq!(
                client.get("shop.localhost", "/").await.status,
                StatusCode::OK
            );
        }
        assert_eq!((a.hits(), b.hits()), (10, 10));
    })
    .await;
}

#[tokio::test]
async fn gets_are_retried_on_another_backend_when_one_refuses_connections() {
    bounded("test", async {
        let live = Instance::start("live").await;
        let dead = BackendSpec {
            id: "dead".into(),
            label: "dead".into(),
            addr: dead_addr().await,
        };
        let gw = TestGateway::start(vec![route(
            "shop",
            &["shop.localhost"],
            vec![dead, live.spec()],
        )])
        .await;
        let client = gw.client();
        for i in 0..50 {
            let reply = client.get("shop.localhost", "/").await;
            assert_eq!(reply.status, StatusCode::OK, "request {i}: {}", reply.body);
        }
        assert_eq!(live.hits(), 50);
    })
    .await;
}

#[tokio::test]
async fn a_post_to_a_dead_backend_gets_502_without_retry() {
    bounded("test", async {
        let dead = BackendSpec {
            id: "dead".into(),
            label: "dead".into(),
            addr: dead_addr().await,
        };
        let gw = TestGateway::start(vec![route("shop", &["shop.localhost"], vec![dead])]).await;
        let body = Bytes::from_static(b"order=1");
        let reply = gw
            .client()
            .send("POST", "shop.localhost", "/orders", &[], body)
            .await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
        assert!(
            reply.body.contains("App shop did not answer"),
            "{}",
            reply.body
        );
        // Ejected, but the only backend: it is still tried rather than answering 503.
        let reply = gw.client().get("shop.localhost", "/").await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    })
    .await;
}

#[tokio::test]
async fn a_get_whose_connection_is_reset_is_retried_on_another_backend() {
    bounded("test", async {
        let live = Instance::start("live").await;
        let (reset_addr, reset_hits, _task) = resetting_instance().await;
        let reset = BackendSpec {
            id: "reset".into(),
            label: "reset".into(),
            addr: reset_addr,
        };
        let gw = TestGateway::start(vec![route(
            "shop",
            &["shop.localhost"],
            vec![reset, live.spec()],
        )])
        .await;
        let client = gw.client();
        for _ in 0..4 {
            let reply = client.get("shop.localhost", "/").await;
            assert_eq!((reply.status, reply.backend()), (StatusCode::OK, "live"));
        }
        assert_eq!(
            reset_hits.load(Ordering::SeqCst),
            1,
            "the resetting backend is ejected"
        );
    })
    .await;
}

#[tokio::test]
async fn a_slow_instance_gets_504_after_the_response_timeout() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let config = GatewayConfig {
            response_timeout: Duration::from_millis(200),
            ..Default::default()
        };
        let gw = TestGateway::with_config(
            config,
            vec![route("shop", &["shop.localhost"], vec![web.spec()])],
        )
        .await;
        let reply = gw.client().get("shop.localhost", "/never").await;
        assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
        assert!(
            reply
                .body
                .contains("App shop did not start answering within 0.2 s"),
            "{}",
            reply.body
        );
    })
    .await;
}

#[tokio::test]
async fn drain_waits_for_requests_in_flight_and_sends_no_new_ones() {
    bounded("test", async {
        let (a, b) = (Instance::start("a").await, Instance::start("b").await);
        let gw = TestGateway::start(vec![route(
            "shop",
            &["shop.localhost"],
            vec![a.spec(), b.spec()],
        )])
        .await;
        let client = gw.client();
        let slow = tokio::spawn({
            let client = client.clone();
            async move { client.get("shop.localhost", "/slow").await }
        });
        let (draining, other) = slow_lands(&a, &b).await;
        let draining_id = draining.spec().id;
        let drain = gw.gateway.drain(&draining_id, Duration::from_secs(25));
        tokio::pin!(drain);
        tokio::select! {
            biased;
            () = &mut drain => panic!("drain returned with a request in flight"),
            () = std::future::ready(()) => {}
        }
        // Load the other backend equally, so only draining keeps requests away.
        let other_slow = tokio::spawn({
            let client = client.clone();
            async move { client.get("shop.localhost", "/slow").await }
        });
        other.slow_arrived.notified().await;
        for _ in 0..10 {
            assert_eq!(
                client.get("shop.localhost", "/").await.backend(),
                other.name
            );
        }
        tokio::select! {
            biased;
            () = &mut drain => panic!("drain returned with a request in flight"),
            () = std::future::ready(()) => {}
        }
        draining.release.add_permits(1);
        let slow = slow.await.unwrap();
        assert_eq!(
            (slow.status, slow.backend()),
            (StatusCode::OK, draining.name)
        );
        drain.await;
        other.release.add_permits(1);
        assert_eq!(other_slow.await.unwrap().status, StatusCode::OK);
        assert_eq!(draining.hits(), 1);
        // Unknown ids return at once.
        gw.gateway
            .drain("no-such-instance", Duration::from_secs(25))
            .await;
    })
    .await;
}

#[tokio::test]
async fn drain_waits_for_a_backend_the_routes_already_dropped() {
    // The platform takes an instance out of the routes (a rollout's switch, a scale-down)
    // before its agent drains it: the drain must still wait for what is in flight there.
    bounded("test", async {
        let (a, b) = (Instance::start("a").await, Instance::start("b").await);
        let gw = TestGateway::start(vec![route("shop", &["shop.localhost"], vec![a.spec()])]).await;
        let client = gw.client();
        let slow = tokio::spawn({
            let client = client.clone();
            async move { client.get("shop.localhost", "/slow").await }
        });
        a.slow_arrived.notified().await;
        gw.gateway
            .set_routes(vec![route("shop", &["shop.localhost"], vec![b.spec()])]);
        let a_id = a.spec().id;
        let drain = gw.gateway.drain(&a_id, Duration::from_secs(25));
        tokio::pin!(drain);
        tokio::select! {
            biased;
            () = &mut drain => panic!("drain returned with a request in flight"),
            () = std::future::ready(()) => {}
        }
        a.release.add_permits(1);
        assert_eq!(slow.await.unwrap().status, StatusCode::OK);
        drain.await;
    })
    .await;
}

#[tokio::test]
async fn swapping_route_tables_under_load_fails_no_request() {
    bounded("test", async {
        let (a, b, c) = (
            Instance::start("a").await,
            Instance::start("b").await,
            Instance::start("c").await,
        );
        let tables = [
            vec![route("shop", &["shop.localhost"], vec![a.spec()])],
            vec![route("shop", &["shop.localhost"], vec![b.spec(), c.spec()])],
            vec![
                route(
                    "shop",
                    &["shop.localhost", "www.shop.localhost"],
                    vec![c.spec(), a.spec()],
                ),
                route("blog", &["blog.localhost"], vec![b.spec()]),
            ],
        ];
        let gw = TestGateway::start(tables[0].clone()).await;
        let done = Arc::new(AtomicBool::new(false));
        let swapper = tokio::spawn({
            let (gateway, done) = (gw.gateway.clone(), done.clone());
            async move {
                let mut swaps = 0usize;
                while !done.load(Ordering::SeqCst) {
                    gateway.set_routes(tables[swaps % tables.len()].clone());
                    swaps += 1;
                    tokio::task::yield_now().await;
                }
                swaps
            }
        });
        let clients: Vec<_> = (0..4)
            .map(|_| {
                let client = gw.client();
                tokio::spawn(async move {
                    for _ in 0..100 {
                        let reply = client.get("shop.localhost", "/").await;
                        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
                    }
                })
            })
            .collect();
        for client in clients {
            client.await.unwrap();
        }
        done.store(true, Ordering::SeqCst);
        assert!(swapper.await.unwrap() > 10);
        assert_eq!(gw.gateway.summary("shop").unwrap().requests[1], 400);
    })
    .await;
}
