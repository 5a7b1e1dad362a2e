//! NATS JetStream through the official async client: a file-backed stream
//! per subject, publishes pipelined with their acks awaited by a separate
//! task (the client's strongest honest path), and ordered pull consumers.

use crate::{rate_line, stats, Result, Target, STALL};
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::StreamExt;
use std::time::{Duration, Instant};

/// Publishes that may await their ack at once: enough to keep the server
/// busy, bounded so memory stays flat.
const IN_FLIGHT: usize = 8192;

pub fn run(mode: &str, t: &Target) -> Result<String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let client = async_nats::connect(&t.addr).await?;
        let js = jetstream::new(client.clone());
        let st = js
            .get_or_create_stream(stream::Config {
                name: t.name.to_uppercase(),
                subjects: vec![t.name.clone()],
                storage: stream::StorageType::File,
                ..Default::default()
            })
            .await?;
        let line = match mode {
            "acked" => acked(&js, t).await?,
            "live" => consume(&st, t, consumer::DeliverPolicy::New, true).await?,
            "replay" => consume(&st, t, consumer::DeliverPolicy::All, false).await?,
            "latency" => latency(&js, &st, t).await?,
            other => return Err(format!("unknown NATS mode {other:?}").into()),
        };
        client.flush().await?;
        Ok(line)
    })
}

/// Publishes `count` messages; the rate is to the last ack.
async fn acked(js: &jetstream::Context, t: &Target) -> Result<String> {
    let payload = Bytes::from(vec![b'x'; t.size]);
    let start = Instant::now();
    publish(js, t, t.count, |_| payload.clone(), None).await?;
    Ok(rate_line(t.count, start.elapsed().as_secs_f64()))
}

/// Sends `n` messages made by `make`, at most `pace` per second when
/// given, and returns once every one of them is acknowledged.
async fn publish(
    js: &jetstream::Context,
    t: &Target,
    n: u64,
    make: impl Fn(u64) -> Bytes,
    pace: Option<u64>,
) -> Result<()> {
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<jetstream::context::PublishAckFuture>(IN_FLIGHT);
    let acker = tokio::spawn(async move {
        while let Some(ack) = rx.recv().await {
            ack.await?;
        }
        Ok::<_, jetstream::context::PublishError>(())
    });
    let start = Instant::now();
    for i in 0..n {
        if let Some(rate) = pace {
            let due = start + Duration::from_nanos(i * 1_000_000_000 / rate);
            tokio::time::sleep_until(due.into()).await;
        }
        let ack = js.publish(t.name.clone(), make(i)).await?;
        if tx.send(ack).await.is_err() {
            break; // the acker failed: its error is returned below
        }
    }
    drop(tx);
    acker.await??;
    Ok(())
}

async fn ordered(
    st: &stream::Stream,
    policy: consumer::DeliverPolicy,
) -> Result<consumer::pull::Ordered> {
    let c = st
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: policy,
            ..Default::default()
        })
        .await?;
    Ok(c.messages().await?)
}

/// Reads `count` messages; the rate runs from the first to the last.
async fn consume(
    st: &stream::Stream,
    t: &Target,
    policy: consumer::DeliverPolicy,
    live: bool,
) -> Result<String> {
    let mut msgs = ordered(st, policy).await?;
    if live {
        eprintln!("ready");
    }
    let mut first = None;
    for _ in 0..t.count {
        next(&mut msgs).await?;
        first.get_or_insert_with(Instant::now);
    }
    let secs = first.map(|f| f.elapsed().as_secs_f64()).unwrap_or_default();
    Ok(rate_line(t.count.saturating_sub(1).max(1), secs))
}

async fn next(msgs: &mut consumer::pull::Ordered) -> Result<jetstream::Message> {
    match tokio::time::timeout(STALL, msgs.next()).await {
        Ok(Some(m)) => Ok(m?),
        Ok(None) => Err("the consumer ended early".into()),
        Err(_) => Err(format!("no message for {} s", STALL.as_secs()).into()),
    }
}

/// Publishes stamped messages at `rate` while an ordered consumer reads
/// them: latency from publish to delivery, durable path included.
async fn latency(js: &jetstream::Context, st: &stream::Stream, t: &Target) -> Result<String> {
    let mut msgs = ordered(st, consumer::DeliverPolicy::New).await?;
    let (count, size) = (t.count, t.size);
    let reader = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let m = next(&mut msgs).await?;
            if let Some(sent) = stats::stamp_of(&m.payload) {
                lat.push(stats::now_ns().saturating_sub(sent));
            }
        }
        Ok::<_, crate::BoxError>(lat)
    });
    publish(
        js,
        t,
        count,
        |_| Bytes::from(stats::stamped(size)),
        Some(t.rate),
    )
    .await?;
    Ok(stats::latency_line(reader.await??))
}
