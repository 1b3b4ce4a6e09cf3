//! Unit tests of the ring and of one connection's cursor.

use super::*;

fn seqs(b: Batch) -> Vec<u64> {
    match b {
        Batch::Events(e) => e.iter().map(|e| e.seq).collect(),
        Batch::Resync { .. } => panic!("unexpected resync"),
    }
}

fn ring(capacity: usize, n: usize) -> Ring {
    let mut r = Ring::new(capacity, usize::MAX);
    for i in 0..n {
        r.push("incident", format!("{{\"n\":{i}}}"));
    }
    r
}

#[test]
fn a_cursor_gets_exactly_the_changes_after_it() {
    let r = ring(10, 5);
    assert_eq!(seqs(r.after(0)), vec![1, 2, 3, 4, 5]);
    assert_eq!(seqs(r.after(3)), vec![4, 5]);
    assert!(seqs(r.after(5)).is_empty());
}

#[test]
fn the_ring_keeps_only_the_newest_and_resyncs_a_client_behind_it() {
    let r = ring(3, 7);
    assert_eq!(seqs(r.after(4)), vec![5, 6, 7]);
    assert!(matches!(r.after(3), Batch::Resync { latest: 7, .. }));
    assert!(matches!(r.after(0), Batch::Resync { latest: 7, .. }));
}

#[test]
fn a_cursor_from_a_previous_run_resyncs() {
    let r = ring(10, 2);
    assert!(matches!(r.after(9), Batch::Resync { latest: 2, .. }));
    let empty = ring(10, 0);
    assert!(seqs(empty.after(0)).is_empty());
    assert!(matches!(empty.after(1), Batch::Resync { latest: 0, .. }));
}

#[test]
fn the_ring_is_bounded_in_bytes_too() {
    let mut r = Ring::new(100, 25);
    for k in 0..5 {
        r.push("incident", format!("{k}-123456789")); // 11 bytes each
    }
    assert_eq!(r.bytes, 22, "two fit in 25 bytes");
    assert_eq!(seqs(r.after(3)), vec![4, 5]);
    assert!(matches!(r.after(2), Batch::Resync { latest: 5, .. }));
    r.push("incident", "x".repeat(100));
    assert_eq!(
        seqs(r.after(5)),
        vec![6],
        "the newest is kept even when too big"
    );
    assert_eq!(r.bytes, 100);
}

#[test]
fn batches_are_bounded() {
    let r = ring(1000, 600);
    let first = seqs(r.after(0));
    assert_eq!(first.len(), BATCH);
    assert_eq!(first.last().copied(), Some(BATCH as u64));
}

#[tokio::test]
async fn a_connection_waits_for_new_changes_and_ends_on_close() {
    let hub = StreamHub::new(8, 1 << 20);
    let mut conn = Connection {
        latest_rx: hub.latest.subscribe(),
        closed_rx: hub.closed(),
        hub: hub.clone(),
        cursor: 0,
        pending: VecDeque::new(),
    };
    let publisher = hub.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(20)).await;
        publisher.publish("incident", &serde_json::json!({"id": "a"}));
    });
    let first = tokio::time::timeout(Duration::from_secs(5), conn.next()).await;
    assert!(matches!(first, Ok(Some(_))), "woken by the change");
    assert_eq!(conn.cursor, 1);
    hub.close();
    let end = tokio::time::timeout(Duration::from_secs(5), conn.next()).await;
    assert!(matches!(end, Ok(None)), "closed hub ends the connection");
}
