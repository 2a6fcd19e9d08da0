//! Metrics, summaries and access log lines.

use std::net::SocketAddr;

use hyper::StatusCode;
use spread_gateway::{AppRoute, Gateway, GatewayConfig, NoAccessLog};

use crate::support::{Instance, TestGateway, bounded, route};

#[tokio::test]
async fn metrics_count_requests_per_app() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gw = TestGateway::start(vec![
            route("shop", &["shop.localhost"], vec![web.spec()]),
            route("empty", &["empty.localhost"], vec![]),
        ])
        .await;
        let client = gw.client();
        for _ in 0..3 {
            assert_eq!(
                client.get("shop.localhost", "/").await.status,
                StatusCode::OK
            );
        }
        assert_eq!(
            client.get("empty.localhost", "/").await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            client.get("unknown.localhost", "/").await.status,
            StatusCode::NOT_FOUND
        );

        let text = gw.gateway.render_metrics();
        assert!(
            text.contains("# TYPE spread_gateway_requests_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("spread_gateway_requests_total{app=\"shop\",class=\"2xx\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("spread_gateway_requests_total{app=\"empty\",class=\"5xx\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE spread_gateway_request_duration_seconds histogram\n"));
        assert!(text.contains(
            "spread_gateway_request_duration_seconds_bucket{app=\"shop\",le=\"+Inf\"} 3\n"
        ));
        assert!(text.contains("spread_gateway_request_duration_seconds_count{app=\"shop\"} 3\n"));
        assert!(text.contains("spread_gateway_in_flight{app=\"shop\"} 0\n"));
        assert!(!text.contains("unknown"));

        let summary = gw.gateway.summary("shop").unwrap();
        assert_eq!(summary.requests, [0, 3, 0, 0, 0]);
        assert_eq!(summary.in_flight, 0);
        assert!(summary.p50_ms.is_some() && summary.p99_ms.is_some());
        assert_eq!(gw.gateway.summary("unknown"), None);
    })
    .await;
}

#[tokio::test]
async fn metrics_outlive_route_changes_but_not_the_app() {
    let gateway = Gateway::new(GatewayConfig::default(), std::sync::Arc::new(NoAccessLog));
    let shop = |backends| AppRoute {
        app: "shop".into(),
        hosts: vec!["shop.localhost".into()],
        backends,
    };
    gateway.set_routes(vec![shop(vec![])]);
    assert!(gateway.summary("shop").is_some());
    gateway.set_routes(vec![shop(vec![spread_gateway::BackendSpec {
        id: "i1".into(),
        label: "web.1".into(),
        addr: SocketAddr::from(([127, 0, 0, 1], 1)),
    }])]);
    assert!(gateway.summary("shop").is_some());
    gateway.set_routes(vec![]);
    assert_eq!(gateway.summary("shop"), None);
}

#[tokio::test]
async fn every_request_of_a_known_app_gets_an_access_log_line() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gw = TestGateway::start(vec![
            route("shop", &["shop.localhost"], vec![web.spec()]),
            route("empty", &["empty.localhost"], vec![]),
        ])
        .await;
        let client = gw.client();
        let reply = client.get("Shop.localhost:80", "/cart?item=1").await;
        let id = reply.headers["x-request-id"].to_str().unwrap().to_owned();
        client.get("empty.localhost", "/").await;
        client.get("unknown.localhost", "/").await;

        let lines = gw.log.all();
        assert_eq!(lines.len(), 2, "{lines:?}");
        let (app, line) = &lines[0];
        assert_eq!(app, "shop");
        let expected = format!(
            "at=info method=GET path=\"/cart?item=1\" host=shop.localhost request_id={id} \
             fwd=\"127.0.0.1\" instance=web connect="
        );
        assert!(line.starts_with(&expected), "{line}");
        assert!(line.contains("ms service="), "{line}");
        assert!(line.contains(" status=200 bytes="), "{line}");
        assert!(line.ends_with(" protocol=http/1.1"), "{line}");
        let (app, line) = &lines[1];
        assert_eq!(app, "empty");
        assert!(
            line.starts_with("at=error code=no_healthy_instance desc=\"no healthy instance\" method=GET path=\"/\""),
            "{line}"
        );
        assert!(line.contains(" status=503 "), "{line}");
    })
    .await;
}
