use ringmq_wire::record::{Properties, property, sys_flag};

use super::*;

#[test]
fn op_bodies_round_trip_and_tolerate_junk() {
    assert_eq!(op_body(&[7]), "7");
    assert_eq!(op_body(&[9, 3]), "9,3");
    assert_eq!(parse_op_body(b"9,3"), vec![9, 3]);
    assert_eq!(parse_op_body(b" 12 "), vec![12]);
    assert_eq!(parse_op_body(b"x,4,,"), vec![4]);
    assert!(parse_op_body(&[0xFF, 0xFE]).is_empty());
}

#[test]
fn half_sends_are_recognised_by_property_or_sys_flag() {
    let mut properties = Properties::new();
    assert!(!is_half_send(&properties, 0));
    assert!(is_half_send(&properties, sys_flag::TRANSACTION_PREPARED));
    assert!(!is_half_send(&properties, sys_flag::TRANSACTION_COMMIT));
    properties.insert(property::TRAN_MSG, "true");
    assert!(is_half_send(&properties, 0));
    properties.insert(property::TRAN_MSG, "false");
    assert!(!is_half_send(&properties, 0));
}

#[test]
fn prepare_half_keeps_the_real_destination() {
    let mut properties = Properties::new();
    let (topic, queue, flag) = prepare_half(
        &mut properties,
        "Orders",
        5,
        sys_flag::TRANSACTION_PREPARED | sys_flag::COMPRESSED,
    );
    assert_eq!(topic, "RMQ_SYS_TRANS_HALF_TOPIC");
    assert_eq!(queue, 0);
    assert_eq!(flag, sys_flag::COMPRESSED);
    assert_eq!(properties.get(property::REAL_TOPIC), Some("Orders"));
    assert_eq!(properties.get(property::REAL_QID), Some("5"));
}

#[test]
fn decided_offsets_are_forgotten_only_below_every_pending_origin() {
    let mut service = TransactionService::new(1_000, 0);
    service.origins_complete_from = 0;
    service.mark_done(&[1], 0);
    service.mark_done(&[4, 2], 1);
    // Copy 6 of origin 3 is still pending: offsets from 3 on must stay.
    service.record_renewed(3, 6, 3);
    let op_progress = service.prune(5, 10);
    assert!(!service.is_done(1, 1), "below every origin: forgotten");
    assert!(service.is_done(4, 4));
    assert_eq!(op_progress, 1, "op entry of the lowest remembered offset");
    // Once the copy is passed and nothing references older origins, all below go.
    let op_progress = service.prune(7, 10);
    assert_eq!(service.done_len(), 0);
    assert_eq!(op_progress, 10);
}

#[test]
fn nothing_is_forgotten_before_the_scan_passed_the_pre_restart_copies() {
    let mut service = TransactionService::new(1_000, 0);
    service.origins_complete_from = 100;
    service.mark_done(&[1, 2], 0);
    assert_eq!(service.prune(50, 9), 0);
    assert_eq!(service.done_len(), 2);
}

#[test]
fn the_decided_set_is_bounded() {
    let mut service = TransactionService::new(1_000, 0);
    for i in 0..(DONE_OFFSETS_MAX as i64 + 10) {
        service.done.insert(i, 0);
    }
    service.mark_done(&[i64::MAX], 1);
    assert_eq!(service.done_len(), DONE_OFFSETS_MAX);
    assert!(service.is_done(i64::MAX, i64::MAX));
    assert!(!service.is_done(0, 0));
}
