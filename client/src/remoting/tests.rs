//! Connection-layer tests against an in-test tokio server speaking the wire codec.

use std::sync::Arc;
use std::time::Duration;

use ringmq_wire::{RemotingCommand, RequestCode, ResponseCode, SerializeType};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;
use crate::testutil::start_server;

/// Generous: the test machine is a shared, oversubscribed box.
const WAIT: Duration = Duration::from_secs(10);

fn request(id: &str) -> RemotingCommand {
    let mut request = RemotingCommand::request(RequestCode::GetRouteinfoByTopic);
    request.ext_fields.insert("id".into(), id.into());
    request
}

fn echo(request: &RemotingCommand) -> RemotingCommand {
    RemotingCommand::response_to(request, ResponseCode::Success)
        .with_remark(request.ext("id").unwrap_or("-").to_owned())
}

#[tokio::test]
async fn responses_out_of_order_are_matched_by_opaque() {
    let addr = start_server(|mut peer| async move {
        let mut requests = Vec::new();
        while requests.len() < 3 {
            requests.push(peer.read().await.expect("request"));
        }
        for request in requests.iter().rev() {
            peer.write(&echo(request)).await;
        }
        peer.read().await;
    })
    .await;
    let client = RemotingClient::new(RemotingConfig::default());
    let calls: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|id| {
            let client = client.clone();
            let addr = addr.clone();
            tokio::spawn(async move { client.invoke(&addr, request(id), WAIT).await })
        })
        .collect();
    for (call, id) in calls.into_iter().zip(["a", "b", "c"]) {
        let response = call.await.expect("join").expect("response");
        assert_eq!(response.remark.as_deref(), Some(id));
        assert!(response.is_response());
    }
}

#[tokio::test]
async fn unanswered_request_times_out_and_connection_stays_usable() {
    let addr = start_server(|mut peer| async move {
        while let Some(request) = peer.read().await {
            if request.ext("id") != Some("ignored") {
                peer.write(&echo(&request)).await;
            }
        }
    })
    .await;
    let client = RemotingClient::new(RemotingConfig::default());
    let error = client
        .invoke(&addr, request("ignored"), Duration::from_millis(200))
        .await
        .expect_err("must time out");
    assert!(
        matches!(&error, ClientError::Timeout { addr: a, request_code: 105, .. } if *a == addr),
        "{error}"
    );
    let response = client.invoke(&addr, request("x"), WAIT).await.expect("ok");
    assert_eq!(response.remark.as_deref(), Some("x"));
}

#[tokio::test]
async fn connection_loss_fails_pending_requests_then_reconnects() {
    let addr = start_server(|mut peer| async move {
        let first = peer.read().await.expect("request");
        if first.ext("id") == Some("drop") {
            return; // closes the socket with the request unanswered
        }
        peer.write(&echo(&first)).await;
        peer.read().await;
    })
    .await;
    let client = RemotingClient::new(RemotingConfig::default());
    // A 60 s timeout: the failure must come from the connection loss, not the timer.
    let error = tokio::time::timeout(
        WAIT,
        client.invoke(&addr, request("drop"), Duration::from_secs(60)),
    )
    .await
    .expect("must fail before the test timeout")
    .expect_err("must fail");
    match &error {
        ClientError::ConnectionLost { addr: a, reason } => {
            assert_eq!(a, &addr);
            assert!(reason.contains("closed"), "{reason}");
        }
        other => panic!("unexpected error {other}"),
    }
    let response = client
        .invoke(&addr, request("again"), WAIT)
        .await
        .expect("reconnected");
    assert_eq!(response.remark.as_deref(), Some("again"));
}

#[tokio::test]
async fn oneway_is_flagged_and_needs_no_response() {
    let (seen_tx, mut seen_rx) = mpsc::channel(4);
    let addr = start_server(move |mut peer| {
        let seen_tx = seen_tx.clone();
        async move {
            while let Some(request) = peer.read().await {
                let _ = seen_tx.send(request).await;
            }
        }
    })
    .await;
    let client = RemotingClient::new(RemotingConfig::default());
    client
        .invoke_oneway(&addr, request("one"), WAIT)
        .await
        .expect("queued");
    let seen = tokio::time::timeout(WAIT, seen_rx.recv())
        .await
        .expect("server got it")
        .expect("request");
    assert!(seen.is_oneway());
    assert_eq!(seen.ext("id"), Some("one"));
}

#[tokio::test]
async fn broker_initiated_requests_reach_their_handler() {
    let (result_tx, mut result_rx) = mpsc::channel(4);
    let addr = start_server(move |mut peer| {
        let result_tx = result_tx.clone();
        async move {
            // The client's first request opens the connection; then we call it back.
            let first = peer.read().await.expect("request");
            let mut notify = RemotingCommand::request(RequestCode::NotifyConsumerIdsChanged);
            notify
                .ext_fields
                .insert("consumerGroup".into(), "G1".into());
            peer.write(&notify).await;
            let unknown = RemotingCommand::request(RequestCode::GetConsumerRunningInfo);
            peer.write(&unknown).await;
            let mut answers = Vec::new();
            while answers.len() < 2 {
                answers.push(peer.read().await.expect("answer"));
            }
            let _ = result_tx
                .send((notify.opaque, unknown.opaque, answers))
                .await;
            peer.write(&echo(&first)).await;
            peer.read().await;
        }
    })
    .await;
    let client = RemotingClient::new(RemotingConfig::default());
    let (handled_tx, mut handled_rx) = mpsc::channel(4);
    client.register_handler(
        RequestCode::NotifyConsumerIdsChanged,
        Arc::new(move |from, request: RemotingCommand| {
            let handled_tx = handled_tx.clone();
            Box::pin(async move {
                let group = request.ext("consumerGroup").unwrap_or_default().to_owned();
                let _ = handled_tx.send((from, group)).await;
                Some(RemotingCommand::response_to(
                    &request,
                    ResponseCode::Success,
                ))
            })
        }),
    );
    let response = client.invoke(&addr, request("x"), WAIT).await.expect("ok");
    assert_eq!(response.remark.as_deref(), Some("x"));
    let (from, group) = handled_rx.recv().await.expect("handled");
    assert_eq!((from.as_str(), group.as_str()), (addr.as_str(), "G1"));
    let (notify_opaque, unknown_opaque, answers) = result_rx.recv().await.expect("answers");
    let code_of = |opaque| {
        answers
            .iter()
            .find(|a| a.opaque == opaque)
            .map(|a| (a.is_response(), a.code))
    };
    assert_eq!(code_of(notify_opaque), Some((true, 0)));
    assert_eq!(
        code_of(unknown_opaque),
        Some((true, ResponseCode::RequestCodeNotSupported.as_i32()))
    );
}

#[tokio::test]
async fn binary_headers_are_used_when_configured() {
    let addr = start_server(|mut peer| async move {
        while let Some(request) = peer.read().await {
            let mut response = echo(&request);
            response.remark = Some(format!("{:?}", request.serialize_type));
            peer.write(&response).await;
        }
    })
    .await;
    let client = RemotingClient::new(RemotingConfig {
        serialize_type: SerializeType::RocketMq,
        ..RemotingConfig::default()
    });
    let response = client.invoke(&addr, request("b"), WAIT).await.expect("ok");
    assert_eq!(response.remark.as_deref(), Some("RocketMq"));
    assert_eq!(response.serialize_type, SerializeType::RocketMq);
}

#[tokio::test]
async fn error_responses_become_typed_errors() {
    let addr = start_server(|mut peer| async move {
        while let Some(request) = peer.read().await {
            peer.write(&RemotingCommand::error_response(
                &request,
                ResponseCode::TopicNotExist,
                "no such topic",
            ))
            .await;
        }
    })
    .await;
    let client = RemotingClient::new(RemotingConfig::default());
    let error = client
        .invoke_ok(&addr, request("e"), WAIT)
        .await
        .expect_err("error response");
    assert_eq!(error.response_code(), Some(17));
    let text = error.to_string();
    assert!(
        text.contains("TOPIC_NOT_EXIST") && text.contains("no such topic"),
        "{text}"
    );
    assert!(text.contains(&addr), "{text}");
}

#[tokio::test]
async fn failed_connect_backs_off() {
    // Bind then drop a listener to get a port nothing listens on.
    let addr = {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        listener.local_addr().expect("addr").to_string()
    };
    let client = RemotingClient::new(RemotingConfig::default());
    let first = client
        .invoke(&addr, request("x"), WAIT)
        .await
        .expect_err("refused");
    assert!(matches!(first, ClientError::Connect { .. }), "{first}");
    let second = client
        .invoke(&addr, request("x"), WAIT)
        .await
        .expect_err("backoff");
    assert!(
        matches!(second, ClientError::ConnectBackoff { failures: 1, .. }),
        "{second}"
    );
}

#[tokio::test]
async fn in_flight_limit_holds_back_requests() {
    let (seen_tx, mut seen_rx) = mpsc::channel(8);
    let addr = start_server(move |mut peer| {
        let seen_tx = seen_tx.clone();
        async move {
            // Never answers: every request stays in flight.
            while let Some(request) = peer.read().await {
                let _ = seen_tx
                    .send(request.ext("id").unwrap_or("-").to_owned())
                    .await;
            }
        }
    })
    .await;
    let client = RemotingClient::new(RemotingConfig {
        max_in_flight: 1,
        ..RemotingConfig::default()
    });
    let holder = {
        let client = client.clone();
        let addr = addr.clone();
        tokio::spawn(async move { client.invoke(&addr, request("first"), WAIT).await })
    };
    assert_eq!(seen_rx.recv().await.as_deref(), Some("first"));
    let held = client
        .invoke(&addr, request("second"), Duration::from_millis(100))
        .await
        .expect_err("no permit");
    assert!(matches!(held, ClientError::Timeout { .. }), "{held}");
    // Oneway frames need no permit; TCP order proves "second" was never written.
    client
        .invoke_oneway(&addr, request("marker"), WAIT)
        .await
        .expect("queued");
    assert_eq!(seen_rx.recv().await.as_deref(), Some("marker"));
    client.shutdown();
    let error = holder.await.expect("join").expect_err("closed");
    assert!(
        matches!(error, ClientError::ConnectionLost { .. }),
        "{error}"
    );
}
