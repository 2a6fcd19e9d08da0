//! `Client::logs` against a real server on loopback: whole lines, however the answer is cut
//! into chunks, and a followed log that goes on until the caller stops.

use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spread_client::{Client, LogsQuery};
use spread_core::AppId;
use spread_server::{LogSource, NodeInstances, Server, ServerConfig};

/// A node with one `web` instance whose logs are in `dir`.
struct OneInstance {
    dir: PathBuf,
}

impl NodeInstances for OneInstance {
    fn instances(&self, _app: &AppId) -> Vec<spread_api::Instance> {
        Vec::new()
    }

    fn log_sources(&self, _app: &AppId) -> Vec<LogSource> {
        vec![LogSource {
            instance: "shop-web-1-0123456789ab".to_owned(),
            process_type: "web".to_owned(),
            dir: self.dir.clone(),
        }]
    }

    fn prepare_image(&self, _app: &AppId, _manifest: &str) -> Result<(), String> {
        Ok(())
    }
}

/// Appends lines as the container monitor writes them.
fn write_lines(dir: &Path, texts: &[String]) {
    std::fs::create_dir_all(dir.join("logs")).unwrap();
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("logs/current.log"))
        .unwrap();
    for text in texts {
        writeln!(file, "{:.3} stdout {text}", jiff::Timestamp::now()).unwrap();
    }
}

#[tokio::test]
async fn logs_arrive_whole_and_a_follow_goes_on_until_the_caller_stops() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("instance");
    // Enough lines that the answer comes in many chunks.
    let first: Vec<String> = (0..3000)
        .map(|i| format!("line {i} {}", "x".repeat(40)))
        .collect();
    write_lines(&logs, &first);

    let config = ServerConfig::new(dir.path().join("data"), "127.0.0.1:0".parse().unwrap());
    let mut server = Server::open(config).await.unwrap();
    server.set_instances(Arc::new(OneInstance { dir: logs.clone() }));
    let token = server.admin_token().unwrap().to_owned();
    let url = format!("http://{}", server.api_addr());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(async {
        let _ = stopped.await;
    }));
    let client = Client::new(&url, Some(token)).unwrap();
    client.create_app("shop").await.unwrap();

    let mut texts = Vec::new();
    let query = LogsQuery {
        lines: Some(10_000),
        ..LogsQuery::default()
    };
    client
        .logs("shop", &query, |line| {
            texts.push(line.text);
            ControlFlow::Continue(())
        })
        .await
        .unwrap();
    assert_eq!(texts, first);

    let query = LogsQuery {
        lines: Some(1),
        process: Some("web".to_owned()),
        follow: true,
        source: None,
    };
    let writer = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        write_lines(&logs, &["later".to_owned()]);
    });
    let mut followed = Vec::new();
    let following = client.logs("shop", &query, |line| {
        followed.push(line.text);
        if followed.len() == 2 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    tokio::time::timeout(Duration::from_secs(10), following)
        .await
        .expect("the line written later arrives")
        .unwrap();
    assert_eq!(
        followed,
        [first.last().unwrap().clone(), "later".to_owned()]
    );
    writer.await.unwrap();

    let zero = LogsQuery {
        lines: Some(0),
        ..LogsQuery::default()
    };
    let err = client
        .logs("shop", &zero, |_| ControlFlow::Continue(()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_query"));
    assert!(err.to_string().contains("`lines`"), "{err}");

    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
}
