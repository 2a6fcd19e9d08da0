//! Routing by host, the gateway's own answers, and the headers an instance receives.

use bytes::Bytes;
use hyper::StatusCode;

use crate::support::{Instance, TestGateway, bounded, route};

#[tokio::test]
async fn requests_reach_the_app_named_by_their_host() {
    bounded("test", async {
        let shop = Instance::start("shop-web").await;
        let blog = Instance::start("blog-web").await;
        let gw = TestGateway::start(vec![
            route("shop", &["shop.localhost"], vec![shop.spec()]),
            route(
                "blog",
                &["blog.example.com", "www.blog.example.com"],
                vec![blog.spec()],
            ),
        ])
        .await;
        let client = gw.client();
        assert_eq!(
            client.get("shop.localhost", "/").await.backend(),
            "shop-web"
        );
        assert_eq!(
            client.get("blog.example.com", "/").await.backend(),
            "blog-web"
        );
        assert_eq!(
            client.get("www.blog.example.com", "/").await.backend(),
            "blog-web"
        );
        // Port, case and a trailing dot do not matter.
        assert_eq!(
            client.get("SHOP.localhost:8080", "/").await.backend(),
            "shop-web"
        );
        assert_eq!(
            client.get("Blog.Example.com.:80", "/").await.backend(),
            "blog-web"
        );
    })
    .await;
}

#[tokio::test]
async fn an_unknown_host_gets_404_naming_the_host() {
    bounded("test", async {
        let gw = TestGateway::start(vec![]).await;
        let reply = gw.client().get("nowhere.example.com:9104", "/").await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(
            reply
                .body
                .contains("No app is served at nowhere.example.com."),
            "{}",
            reply.body
        );
        assert!(
            reply
                .body
                .contains("spread domains add nowhere.example.com -a APP")
        );
        assert!(
            reply.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(reply.headers.contains_key("x-request-id"));
    })
    .await;
}

#[tokio::test]
async fn browsers_get_an_html_page() {
    bounded("test", async {
        let gw = TestGateway::start(vec![]).await;
        let accept = [("accept", "text/html,application/xhtml+xml;q=0.9,*/*;q=0.8")];
        let reply = gw
            .client()
            .send("GET", "x.localhost", "/", &accept, Bytes::new())
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);
        assert!(
            reply.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        assert!(reply.body.starts_with("<!doctype html>"));
        assert!(reply.body.contains("No app is served at x.localhost."));
    })
    .await;
}

#[tokio::test]
async fn an_app_without_instances_gets_503_naming_the_app() {
    bounded("test", async {
        let gw = TestGateway::start(vec![route("shop", &["shop.localhost"], vec![])]).await;
        let reply = gw.client().get("shop.localhost", "/").await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            reply
                .body
                .contains("App shop has no healthy instance right now.")
        );
        assert!(reply.body.contains("spread ps -a shop"));
        assert!(reply.headers.contains_key("x-request-id"));
    })
    .await;
}

#[tokio::test]
async fn a_request_without_a_valid_host_gets_400() {
    bounded("test", async {
        let gw = TestGateway::start(vec![]).await;
        let reply = gw.client().get("bad host", "/").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST);
        assert!(reply.body.contains("names no host"), "{}", reply.body);
    })
    .await;
}

#[tokio::test]
async fn the_instance_sees_forwarded_headers_and_a_request_id() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gw =
            TestGateway::start(vec![route("shop", &["shop.localhost"], vec![web.spec()])]).await;
        let client = gw.client();
        let headers = [
            ("x-forwarded-for", "203.0.113.7"),
            ("x-forwarded-proto", "https"),
        ];
        let reply = client
            .send(
                "GET",
                "shop.localhost:9104",
                "/a?b=c",
                &headers,
                Bytes::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(
            reply.body.starts_with("GET /a?b=c\n"),
            "origin-form path: {}",
            reply.body
        );
        assert_eq!(reply.seen("host"), Some("shop.localhost:9104"));
        assert_eq!(
            reply.seen("x-forwarded-for"),
            Some("203.0.113.7, 127.0.0.1")
        );
        assert_eq!(reply.seen("x-forwarded-proto"), Some("http"));
        assert_eq!(reply.seen("x-forwarded-host"), Some("shop.localhost:9104"));
        let made = reply.seen("x-request-id").expect("a request id").to_owned();
        assert_eq!(made.len(), 24);
        assert_eq!(reply.headers["x-request-id"], made.as_str());
    })
    .await;
}

#[tokio::test]
async fn a_valid_client_request_id_is_kept_and_an_invalid_one_replaced() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gw =
            TestGateway::start(vec![route("shop", &["shop.localhost"], vec![web.spec()])]).await;
        let client = gw.client();
        let kept = [("x-request-id", "trace-42/abc")];
        let reply = client
            .send("GET", "shop.localhost", "/", &kept, Bytes::new())
            .await;
        assert_eq!(reply.seen("x-request-id"), Some("trace-42/abc"));
        assert_eq!(reply.headers["x-request-id"], "trace-42/abc");

        let long = "x".repeat(201);
        let replaced = [("x-request-id", long.as_str())];
        let reply = client
            .send("GET", "shop.localhost", "/", &replaced, Bytes::new())
            .await;
        let id = reply.seen("x-request-id").unwrap();
        assert_ne!(id, long);
        assert_eq!(id.len(), 24);
        let spaced = [("x-request-id", "has space")];
        let reply = client
            .send("GET", "shop.localhost", "/", &spaced, Bytes::new())
            .await;
        assert_ne!(reply.seen("x-request-id"), Some("has space"));
    })
    .await;
}

#[tokio::test]
async fn hop_by_hop_headers_are_not_forwarded_either_way() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gw =
            TestGateway::start(vec![route("shop", &["shop.localhost"], vec![web.spec()])]).await;
        let headers = [
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "secret"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("x-kept", "yes"),
        ];
        let reply = gw
            .client()
            .send("GET", "shop.localhost", "/", &headers, Bytes::new())
            .await;
        for gone in [
            "connection",
            "x-hop",
            "keep-alive",
            "te",
            "proxy-authorization",
        ] {
            assert_eq!(
                reply.seen(gone),
                None,
                "{gone} reached the instance: {}",
                reply.body
            );
        }
        assert_eq!(reply.seen("x-kept"), Some("yes"));
        // The instance answers with `Keep-Alive`; the client does not see it.
        assert!(!reply.headers.contains_key("keep-alive"));
    })
    .await;
}

#[tokio::test]
async fn request_and_response_bodies_pass_through() {
    bounded("test", async {
        let web = Instance::start("web").await;
        let gw =
            TestGateway::start(vec![route("shop", &["shop.localhost"], vec![web.spec()])]).await;
        let body = Bytes::from(vec![b'a'; 100_000]);
        let reply = gw
            .client()
            .send("POST", "shop.localhost", "/upload", &[], body)
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.seen("content-length"), Some("100000"));
        assert_eq!(reply.seen("body-bytes"), Some("100000"));
    })
    .await;
}
