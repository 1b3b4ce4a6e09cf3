//! `record`: subscribe like the live source and write every message in the contract's recording
//! format, flushing after each line.

use std::io::Write;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::{run_source, wait_shutdown, MqttConfig, MqttError, SourceStats};
use crate::ingest::recording::write_line;

/// Messages between the source and the writer. Small, because the source acks a QoS 1 message
/// once it is in this channel: when recording stops at `max_messages`, up to this many acked
/// messages are not written.
const CHANNEL_CAPACITY: usize = 16;

/// Records `cfg.subscriptions` to `out` until `shutdown` (or after `max_messages` messages);
/// returns how many messages were written.
///
/// Uses [`run_source`] (manual acks, backoff, resubscribe); writes are synchronous, one flushed
/// line per message, in arrival order. On shutdown, messages already received are written first.
pub async fn record(
    cfg: MqttConfig,
    out: &mut (impl Write + Send),
    mut shutdown: watch::Receiver<bool>,
    max_messages: Option<u64>,
) -> Result<u64, MqttError> {
    if max_messages == Some(0) {
        return Ok(0);
    }
    let (tx, mut rx) = mpsc::channel(CHANNEL_CAPACITY);
    let (stop_tx, stop_rx) = watch::channel(false);
    let stats = Arc::new(SourceStats::default());
    let source = run_source(cfg, tx, stats, stop_rx);
    let writer = async {
        let mut written = 0u64;
        let mut stopping = false;
        loop {
            tokio::select! {
                biased;
                m = rx.recv() => {
                    let Some(m) = m else { break };
                    let res = write_line(out, &m).and_then(|()| out.flush());
                    if let Err(e) = res {
                        let _ = stop_tx.send(true);
                        return Err(MqttError::Write(e));
                    }
                    written += 1;
                    if Some(written) == max_messages {
                        let _ = stop_tx.send(true);
                        break;
                    }
                }
                _ = wait_shutdown(&mut shutdown), if !stopping => {
                    // Stop the source, then drain what it already handed over.
                    stopping = true;
                    let _ = stop_tx.send(true);
                }
            }
        }
        Ok(written)
    };
    let (source_res, written) = tokio::join!(source, writer);
    let written = written?;
    source_res?;
    tracing::info!(written, "recording finished");
    Ok(written)
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::sync::watch;

    use super::super::tests::{broker, cfg_for, payload, wait_until, WAIT};
    use super::*;
    use crate::ingest::publish::Publisher;
    use crate::ingest::recording::{RawMessage, RecordingReader};

    /// A `Write` whose bytes the test can watch while `record` holds it.
    #[derive(Clone, Default)]
    struct SharedBuf(Arc<Mutex<Vec<u8>>>);

    impl Write for SharedBuf {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::Error::other("poisoned"))?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl SharedBuf {
        fn messages(&self) -> Vec<RawMessage> {
            let bytes = self.0.lock().expect("not poisoned").clone();
            RecordingReader::new(&bytes[..])
                .map(|r| r.expect("valid line"))
                .collect()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn record_writes_every_message_in_the_recording_format() {
        let m = broker();
        let buf = SharedBuf::default();
        let (stop, stop_rx) = watch::channel(false);
        let cfg = cfg_for(&m, "recorder");
        let mut out = buf.clone();
        let recorder = tokio::spawn(async move { record(cfg, &mut out, stop_rx, None).await });

        let publisher = Publisher::connect(&cfg_for(&m, "pub-rec"), "t")
            .await
            .expect("connects");
        let b = buf.clone();
        for i in 0.. {
            assert!(i < 100, "recorder never subscribed");
            publisher
                .publish("city/probe", b"p".to_vec(), 0, false)
                .await
                .expect("probe");
            tokio::time::sleep(Duration::from_millis(100)).await;
            if !b.messages().is_empty() {
                break;
            }
        }
        let sent: Vec<(String, Vec<u8>)> = (0..100)
            .map(|i| match i % 3 {
                0 => (format!("city/test/{i}"), payload(i)),
                1 => ("city/test/bin".to_string(), vec![0xff, 0xfe, i as u8]),
                _ => ("city/test/empty".to_string(), Vec::new()),
            })
            .collect();
        for (topic, p) in &sent {
            publisher
                .publish(topic, p.clone(), 1, false)
                .await
                .expect("publish");
        }
        publisher.flush().await.expect("acknowledged");
        let test_msgs = || -> Vec<RawMessage> {
            b.messages()
                .into_iter()
                .filter(|m| m.topic.starts_with("city/test/"))
                .collect()
        };
        wait_until("all recorded", || test_msgs().len() >= sent.len()).await;
        stop.send(true).expect("recorder running");
        let written = recorder.await.expect("joins").expect("records");
        let all = buf.messages();
        assert_eq!(written, all.len() as u64);
        let got: Vec<(String, Vec<u8>)> = test_msgs()
            .into_iter()
            .map(|m| (m.topic, m.payload))
            .collect();
        assert_eq!(got, sent);
        assert!(all.windows(2).all(|w| w[0].arrival <= w[1].arrival));
        publisher.disconnect().await;

        // max_messages stops the recorder by itself.
        let (_keep, stop_rx) = watch::channel(false);
        let cfg = cfg_for(&m, "recorder-max");
        let mut out2 = Vec::new();
        let pubc = Publisher::connect(&cfg_for(&m, "pub-max"), "t")
            .await
            .expect("connects");
        let feeder = async {
            loop {
                pubc.publish("city/probe", b"p".to_vec(), 0, false)
                    .await
                    .expect("publish");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        let n = tokio::select! {
            n = record(cfg, &mut out2, stop_rx, Some(3)) => n.expect("records"),
            _ = feeder => unreachable!(),
            _ = tokio::time::sleep(WAIT) => panic!("max_messages did not stop the recorder"),
        };
        assert_eq!(n, 3);
        assert_eq!(RecordingReader::new(&out2[..]).count(), 3);
    }
}
