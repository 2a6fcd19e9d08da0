//! `GET /v1/apps/{app}/instances` and `/logs`, over a fake node with real log files.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode, header};
use axum::response::Response;
use common::{FakeNode, LogDir, api_on, assert_error, moment};
use http_body_util::BodyExt;
use serde_json::Value;
use spread_api::{Instance, InstanceExit, LogLine};

fn instance(id: &str, process_type: &str, index: u32) -> Instance {
    Instance {
        id: id.to_owned(),
        process_type: process_type.to_owned(),
        index,
        release: 3,
        state: "crashed".to_owned(),
        restarts: 2,
        started_at: None,
        last_exit: Some(InstanceExit {
            code: Some(1),
            signal: None,
            oom_killed: false,
        }),
        address: Some("10.88.0.5".to_owned()),
        cpu_millis: None,
        memory_bytes: None,
        memory_limit_bytes: Some(512 * 1024 * 1024),
        healthy: false,
    }
}

#[tokio::test]
async fn instances_of_an_app_are_listed_as_the_node_reports_them() {
    let node = Arc::new(FakeNode::default());
    let api = api_on(node.clone()).await;
    let shop = api.create_app("shop").await;
    let blog = api.create_app("blog").await;
    let web = instance("shop-web-1-0123456789ab", "web", 1);
    node.add_instance(shop, web.clone());
    node.add_instance(blog, instance("blog-web-1-0123456789ab", "web", 1));

    let (status, body) = api.call(Method::GET, "/v1/apps/shop/instances", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let listed: Vec<Instance> = serde_json::from_value(body).unwrap();
    assert_eq!(listed, vec![web], "only shop's instances");

    let (status, body) = api
        .call(Method::GET, "/v1/apps/fresh/instances", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    api.create("fresh").await;
    let (status, body) = api
        .call(Method::GET, "/v1/apps/fresh/instances", None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));
}

#[tokio::test]
async fn instances_of_an_unknown_app_are_404() {
    let api = api_on(Arc::new(FakeNode::default())).await;
    let (status, body) = api
        .call(Method::GET, "/v1/apps/ghost/instances", None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");
    let (status, body) = api.call(Method::GET, "/v1/apps/ghost/logs", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error(&body, "app_not_found");
}

/// An app `shop` with a web and a worker instance whose lines interleave in time.
async fn shop_with_logs() -> (common::Api, Arc<FakeNode>, tempfile::TempDir) {
    let node = Arc::new(FakeNode::default());
    let api = api_on(node.clone()).await;
    let shop = api.create_app("shop").await;
    let root = tempfile::tempdir().unwrap();
    let web = LogDir::new(root.path(), "shop-web-1-0123456789ab");
    web.write(&[
        (1, "stdout", "web one"),
        (3, "stderr", "web three"),
        (5, "stdout", "web five"),
    ]);
    let worker = LogDir::new(root.path(), "shop-worker-1-ba9876543210");
    worker.write(&[(2, "stdout", "worker two"), (4, "stdout", "worker four")]);
    node.add_source(shop, "shop-web-1-0123456789ab", "web", &web.0);
    node.add_source(shop, "shop-worker-1-ba9876543210", "worker", &worker.0);
    (api, node, root)
}

/// The body of a finished logs answer, parsed line by line.
async fn log_lines(api: &common::Api, path: &str) -> Vec<LogLine> {
    let response = api
        .response(Method::GET, path, Some(&api.token), Body::empty())
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()[header::CONTENT_TYPE],
        "application/x-ndjson"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn texts(lines: &[LogLine]) -> Vec<&str> {
    lines.iter().map(|l| l.text.as_str()).collect()
}

#[tokio::test]
async fn logs_of_all_instances_are_merged_by_time() {
    let (api, _node, _root) = shop_with_logs().await;
    let lines = log_lines(&api, "/v1/apps/shop/logs").await;
    assert_eq!(
        texts(&lines),
        [
            "web one",
            "worker two",
            "web three",
            "worker four",
            "web five"
        ]
    );
    assert_eq!(
        lines[2],
        LogLine {
            at: moment(3),
            instance: "shop-web-1-0123456789ab".to_owned(),
            process_type: "web".to_owned(),
            stream: "stderr".to_owned(),
            text: "web three".to_owned(),
        }
    );
}

#[tokio::test]
async fn logs_are_cut_to_the_last_lines_asked_for() {
    let (api, _node, _root) = shop_with_logs().await;
    let lines = log_lines(&api, "/v1/apps/shop/logs?lines=2").await;
    assert_eq!(texts(&lines), ["worker four", "web five"]);
    let lines = log_lines(&api, "/v1/apps/shop/logs?lines=10000").await;
    assert_eq!(lines.len(), 5);
}

#[tokio::test]
async fn logs_can_be_of_one_process_type() {
    let (api, _node, _root) = shop_with_logs().await;
    let lines = log_lines(&api, "/v1/apps/shop/logs?process=worker").await;
    assert_eq!(texts(&lines), ["worker two", "worker four"]);
    let lines = log_lines(&api, "/v1/apps/shop/logs?process=clock").await;
    assert!(lines.is_empty());
}

#[tokio::test]
async fn an_instance_without_log_files_has_no_lines() {
    let (api, node, root) = shop_with_logs().await;
    let shop = api.create_app("blog").await;
    node.add_source(
        shop,
        "blog-web-1-0123456789ab",
        "web",
        &root.path().join("nowhere"),
    );
    let empty = LogDir::new(root.path(), "blog-web-2-0123456789ab");
    std::fs::create_dir_all(empty.0.join("logs")).unwrap();
    node.add_source(shop, "blog-web-2-0123456789ab", "web", &empty.0);
    assert!(log_lines(&api, "/v1/apps/blog/logs").await.is_empty());
}

#[tokio::test]
async fn bad_query_values_are_refused_naming_them() {
    let (api, _node, _root) = shop_with_logs().await;
    for lines in ["0", "10001", "many", "-1"] {
        let path = format!("/v1/apps/shop/logs?lines={lines}");
        let (status, body) = api.call(Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_error(&body, "invalid_query");
        assert_eq!(body["field"], "lines");
        assert!(
            body["message"].as_str().unwrap().contains("`lines`"),
            "{body}"
        );
    }
    let (status, body) = api
        .call(Method::GET, "/v1/apps/shop/logs?process=Web_1", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_error(&body, "invalid_name");
    let (status, body) = api
        .call(Method::GET, "/v1/apps/shop/logs?follow=yes", None)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["field"], "follow");
}

/// Reads a streamed NDJSON body line by line.
struct Lines {
    body: Body,
    buffer: Vec<u8>,
}

impl Lines {
    fn new(response: Response) -> Self {
        Self {
            body: response.into_body(),
            buffer: Vec::new(),
        }
    }

    /// The next line, waiting at most a few seconds for it.
    async fn next(&mut self) -> LogLine {
        loop {
            if let Some(end) = self.buffer.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return serde_json::from_slice(&line).unwrap();
            }
            let frame = tokio::time::timeout(Duration::from_secs(10), self.body.frame())
                .await
                .expect("a line arrives within 10 s")
                .expect("the answer goes on")
                .unwrap();
            if let Ok(data) = frame.into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
    }
}

#[tokio::test]
async fn following_logs_sends_lines_written_after_the_request() {
    let (api, node, root) = shop_with_logs().await;
    let response = api
        .response(
            Method::GET,
            "/v1/apps/shop/logs?follow=true&lines=2",
            Some(&api.token),
            Body::empty(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = Lines::new(response);
    assert_eq!(lines.next().await.text, "worker four");
    assert_eq!(lines.next().await.text, "web five");

    LogDir::new(root.path(), "shop-web-1-0123456789ab").write(&[(6, "stdout", "web six")]);
    let line = lines.next().await;
    assert_eq!(
        (line.text.as_str(), line.process_type.as_str()),
        ("web six", "web")
    );

    // An instance started after the request is followed from its first line.
    let (_, app) = api.call(Method::GET, "/v1/apps/shop", None).await;
    let shop = spread_core::AppId(app["id"].as_str().unwrap().parse().unwrap());
    let web2 = LogDir::new(root.path(), "shop-web-2-0123456789ab");
    web2.write(&[(7, "stdout", "web2 seven"), (8, "stderr", "web2 eight")]);
    node.add_source(shop, "shop-web-2-0123456789ab", "web", &web2.0);
    assert_eq!(lines.next().await.text, "web2 seven");
    let line = lines.next().await;
    assert_eq!(
        (line.text.as_str(), line.stream.as_str()),
        ("web2 eight", "stderr")
    );
}

#[tokio::test]
async fn a_followed_log_can_start_empty() {
    let node = Arc::new(FakeNode::default());
    let api = api_on(node.clone()).await;
    let shop = api.create_app("shop").await;
    let root = tempfile::tempdir().unwrap();
    let web = LogDir::new(root.path(), "shop-web-1-0123456789ab");
    node.add_source(shop, "shop-web-1-0123456789ab", "web", &web.0);
    let response = api
        .response(
            Method::GET,
            "/v1/apps/shop/logs?follow=true",
            Some(&api.token),
            Body::empty(),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let mut lines = Lines::new(response);
    web.write(&[(1, "stdout", "first")]);
    assert_eq!(lines.next().await.text, "first");
}

#[test]
fn log_line_json_has_the_documented_fields() {
    let line = LogLine {
        at: moment(0),
        instance: "shop-web-1-0123456789ab".to_owned(),
        process_type: "web".to_owned(),
        stream: "stdout".to_owned(),
        text: "hi".to_owned(),
    };
    let value: Value = serde_json::to_value(&line).unwrap();
    assert_eq!(
        value,
        serde_json::json!({
            "at": "2026-11-23T10:00:00Z",
            "instance": "shop-web-1-0123456789ab",
            "type": "web",
            "stream": "stdout",
            "text": "hi"
        })
    );
}

#[tokio::test]
async fn a_followed_log_does_not_keep_the_server_from_stopping() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().unwrap();
    let config =
        spread_server::ServerConfig::new(dir.path().to_owned(), "127.0.0.1:0".parse().unwrap());
    let server = spread_server::Server::open(config).await.unwrap();
    let token = server.admin_token().unwrap().to_owned();
    let addr = server.api_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));

    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let create = r#"{"name":"shop"}"#;
    let request = format!(
        "POST /v1/apps HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{create}",
        create.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut buffer = vec![0; 4096];
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(
        buffer[..n].starts_with(b"HTTP/1.1 201"),
        "{}",
        String::from_utf8_lossy(&buffer[..n])
    );
    let request = format!(
        "GET /v1/apps/shop/logs?follow=true HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {token}\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let n = stream.read(&mut buffer).await.unwrap();
    assert!(
        buffer[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buffer[..n])
    );

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), serving)
        .await
        .expect("the server stops while a log is followed")
        .unwrap()
        .unwrap();
}
