//! Optimizer tests for loop peeling and for keeping loads across stores into other objects
//! (`GuardNe`): IR text in, the expected optimised IR text out.

use super::*;

use super::tests::{check, B};

#[test]
fn a_store_into_another_object_keeps_the_load_behind_a_guard_ne() {
    check(
        "slots 3
         0000 input 0
         0001 input 1
         0002 load.slot 0000 0
         0003 guard.int 0002 -> s0
         0004 store.slot 0001 0 0002
         0005 load.slot 0000 0
         0006 exit -> s1
         s0:
         s1: [2]=0005",
        "slots 3
         0000 input 0
         0001 input 1
         0002 load.slot 0000 0
         0003 guard.int 0002 -> s0
         0004 guard.ne 0001 0000 -> s2
         0005 store.slot 0001 0 0002
         0006 exit -> s1
         s0:
         s1: [2]=0002
         s2=s0:",
    );
}

#[test]
fn without_a_snapshot_to_exit_by_a_possibly_aliasing_store_forgets_the_load() {
    // The second store follows the first with no exit between: no state to guard with.
    check(
        "slots 3
         0000 input 0
         0001 input 1
         0002 load.slot 0000 0
         0003 store.slot 0001 1 0002
         0004 store.slot 0001 0 0002
         0005 load.slot 0000 0
         0006 load.slot 0001 1
         0007 exit -> s0
         s0: [2]=0005 [1]=0006",
        "slots 3
         0000 input 0
         0001 input 1
         0002 load.slot 0000 0
         0003 store.slot 0001 1 0002
         0004 store.slot 0001 0 0002
         0005 load.slot 0000 0
         0006 exit -> s0
         s0: [2]=0005 [1]=0002",
    );
}

#[test]
fn objects_of_different_classes_need_no_guard_and_element_stores_keep_other_indices() {
    check(
        "slots 4
         0000 input 0
         0001 input 1
         0002 input 2
         0003 guard.class 0000 @1000 -> s0
         0004 guard.class 0001 @2000 -> s0
         0005 load.slot 0000 0
         0006 const #2
         0007 const #3
         0008 guard.index 0001 0006 -> s0
         0009 guard.index 0001 0007 -> s0
         0010 load.elem 0001 0007
         0011 store.elem 0001 0006 0002
         0012 load.slot 0000 0
         0013 load.elem 0001 0007
         0014 load.elem 0001 0006
         0015 exit -> s1
         s0:
         s1: [0]=0012 [1]=0013 [2]=0014",
        "slots 4
         0000 input 0
         0001 input 1
         0002 input 2
         0003 guard.class 0000 @1000 -> s0
         0004 guard.class 0001 @2000 -> s0
         0005 load.slot 0000 0
         0006 const #2
         0007 const #3
         0008 guard.index 0001 0006 -> s0
         0009 guard.index 0001 0007 -> s0
         0010 load.elem 0001 0007
         0011 store.elem 0001 0006 0002
         0012 exit -> s1
         s0:
         s1: [0]=0005 [1]=0010 [2]=0002",
    );
}

#[test]
fn an_element_store_at_an_unknown_index_forgets_that_objects_slots_and_elements() {
    check(
        "slots 4
         0000 input 0
         0001 input 1
         0002 input 2
         0003 guard.int 0001 -> s0
         0004 guard.index 0000 0001 -> s0
         0005 load.slot 0000 0
         0006 load.elem 0000 0001
         0007 store.elem 0000 0001 0002
         0008 load.slot 0000 0
         0009 load.elem 0000 0001
         0010 exit -> s1
         s0:
         s1: [0]=0005 [1]=0008 [2]=0009 [3]=0006",
        "slots 4
         0000 input 0
         0001 input 1
         0002 input 2
         0003 guard.int 0001 -> s0
         0004 guard.index 0000 0001 -> s0
         0005 load.slot 0000 0
         0006 load.elem 0000 0001
         0007 store.elem 0000 0001 0002
         0008 load.slot 0000 0
         0009 exit -> s1
         s0:
         s1: [0]=0005 [1]=0008 [2]=0002 [3]=0006",
    );
}

/// `[i <= n] whileTrue: [sum <- sum + i. i <- i + 1]` as the recorder makes it: i, sum and n in
/// slots 0, 1, 2 of a temporaries array, loaded and checked every iteration.
const SUM_LOOP: &str = "slots 1
     0000 input 0
     0001 loop
     0002 load.slot 0000 0
     0003 load.slot 0000 2
     0004 guard.int 0002 -> s1
     0005 guard.int 0003 -> s1
     0006 le 0002 0003
     0007 guard.is 0006 #1 -> s2
     0008 load.slot 0000 1
     0009 guard.int 0008 -> s3
     0010 add.ov 0008 0002 -> s3
     0011 store.slot 0000 1 0010
     0012 const #1
     0013 add.ov 0002 0012 -> s4
     0014 store.slot 0000 0 0013
     s0: [0]=0000
     s1: [0]=0000
     s2: [0]=0000
     s3: [0]=0000
     s4: [0]=0000";

#[test]
fn a_peeled_sum_loop_keeps_only_the_exit_and_overflow_checks() {
    check(
        SUM_LOOP,
        "slots 1
         0000 input 0
         0001 load.slot 0000 0
         0002 load.slot 0000 2
         0003 guard.int 0001 -> s1
         0004 guard.int 0002 -> s1
         0005 le 0001 0002
         0006 guard.is 0005 #1 -> s2
         0007 load.slot 0000 1
         0008 guard.int 0007 -> s3
         0009 add.ov 0007 0001 -> s3
         0010 store.slot 0000 1 0009
         0011 const #1
         0012 add.ov 0001 0011 -> s4
         0013 store.slot 0000 0 0012
         0014 loop
         0015 phi 0012 0021
         0016 phi 0009 0019
         0017 le 0015 0002
         0018 guard.is 0017 #1 -> s6
         0019 add.ov 0016 0015 -> s7
         0020 store.slot 0000 1 0019
         0021 add.ov 0015 0011 -> s8
         0022 store.slot 0000 0 0021
         s0:
         s1: [0]=0000
         s2: [0]=0000
         s3: [0]=0000
         s4: [0]=0000
         s5=s1:
         s6=s2: [0]=0000
         s7=s3: [0]=0000
         s8=s4: [0]=0000",
    );
}

#[test]
fn a_peeled_swap_carries_both_values_in_phis() {
    // a <- t0. t0 <- t1. t1 <- a (t0 checked to be a SmallInt each time round).
    check(
        "slots 1
         0000 input 0
         0001 loop
         0002 load.slot 0000 0
         0003 guard.int 0002 -> s0
         0004 load.slot 0000 1
         0005 store.slot 0000 0 0004
         0006 store.slot 0000 1 0002
         s0: [0]=0000",
        "slots 1
         0000 input 0
         0001 load.slot 0000 0
         0002 guard.int 0001 -> s0
         0003 load.slot 0000 1
         0004 store.slot 0000 0 0003
         0005 store.slot 0000 1 0001
         0006 loop
         0007 phi 0003 0008
         0008 phi 0001 0007
         0009 guard.int 0007 -> s1
         0010 store.slot 0000 0 0008
         0011 store.slot 0000 1 0007
         s0: [0]=0000
         s1=s0: [0]=0000",
    );
}

#[test]
fn without_alias_guards_a_store_elsewhere_forgets_the_load() {
    let t = Trace::parse(
        "slots 3
         0000 input 0
         0001 input 1
         0002 load.slot 0000 0
         0003 guard.int 0002 -> s0
         0004 store.slot 0001 0 0002
         0005 load.slot 0000 0
         0006 exit -> s1
         s0:
         s1: [2]=0005",
    )
    .unwrap();
    let got = optimize_with(&t, B, Options { alias_guards: false });
    got.verify().unwrap();
    assert!(!got.insts.iter().any(|i| matches!(i.op, Op::GuardNe(..))), "{got}");
    assert_eq!(got.insts.iter().filter(|i| matches!(i.op, Op::LoadSlot(..))).count(), 2, "{got}");
}

#[test]
fn a_guard_ne_in_the_loop_never_exits_by_the_preambles_last_snapshot() {
    // The body ends with a guard and begins with a store: at the loop copy's first store there is
    // no snapshot of *this* iteration to exit by, so the load from the other object is forgotten
    // rather than kept behind a guard that would resume the previous iteration's last bytecode.
    let t = Trace::parse(
        "slots 3
         0000 input 0
         0001 input 1
         0002 loop
         0003 load.slot 0000 1
         0004 store.slot 0001 1 0003
         0005 load.slot 0000 1
         0006 guard.int 0005 -> s1
         s0:
         s1: [2]=0005",
    )
    .unwrap();
    let got = optimize(&t, B);
    got.verify().unwrap();
    let head = got.loop_start().unwrap();
    for (i, inst) in got.insts.iter().enumerate().skip(head) {
        if let (Op::GuardNe(..), Some(s)) = (inst.op, inst.snap) {
            panic!("instruction {i}: a GuardNe in the loop exits by s{} of the preamble\n{got}", s.0);
        }
    }
}

#[test]
fn a_byte_store_forgets_the_byte_loads_it_may_alias_and_keeps_the_rest() {
    // o (0) and p (1) are of different classes; q (3) may be o; index 2 ≠ index 3.
    check(
        "slots 8
         0000 input 0
         0001 input 1
         0002 input 2
         0003 input 3
         0004 guard.class 0000 @1000 -> s0
         0005 guard.class 0001 @2000 -> s0
         0006 const #2
         0007 const #3
         0008 load.byte 0000 0006
         0009 load.byte 0000 0007
         0010 load.byte 0001 0006
         0011 load.byte 0003 0006
         0012 store.byte 0000 0006 0002
         0013 load.byte 0000 0006
         0014 load.byte 0000 0007
         0015 load.byte 0001 0006
         0016 load.byte 0003 0006
         0017 exit -> s1
         s0:
         s1: [0]=0008 [1]=0009 [2]=0010 [3]=0011 [4]=0013 [5]=0014 [6]=0015 [7]=0016",
        "slots 8
         0000 input 0
         0001 input 1
         0002 input 2
         0003 input 3
         0004 guard.class 0000 @1000 -> s0
         0005 guard.class 0001 @2000 -> s0
         0006 const #2
         0007 const #3
         0008 load.byte 0000 0006
         0009 load.byte 0000 0007
         0010 load.byte 0001 0006
         0011 load.byte 0003 0006
         0012 store.byte 0000 0006 0002
         0013 load.byte 0000 0006
         0014 load.byte 0003 0006
         0015 exit -> s1
         s0:
         s1: [0]=0008 [1]=0009 [2]=0010 [3]=0011 [4]=0013 [5]=0009 [6]=0010 [7]=0014",
    );
}

#[test]
fn a_byte_store_at_an_unknown_index_forgets_that_objects_bytes_and_no_slot_or_element() {
    // Byte stores write only bytes: slot and element loads of any object stay.
    check(
        "slots 4
         0000 input 0
         0001 input 1
         0002 input 2
         0003 input 3
         0004 const #1
         0005 load.byte 0000 0004
         0006 load.slot 0003 0
         0007 load.elem 0003 0004
         0008 store.byte 0000 0001 0002
         0009 load.byte 0000 0004
         0010 load.slot 0003 0
         0011 load.elem 0003 0004
         0012 exit -> s1
         s0:
         s1: [0]=0005 [1]=0009 [2]=0010 [3]=0011",
        "slots 4
         0000 input 0
         0001 input 1
         0002 input 2
         0003 input 3
         0004 const #1
         0005 load.byte 0000 0004
         0006 load.slot 0003 0
         0007 load.elem 0003 0004
         0008 store.byte 0000 0001 0002
         0009 load.byte 0000 0004
         0010 exit -> s1
         s0:
         s1: [0]=0005 [1]=0009 [2]=0006 [3]=0007",
    );
}

#[test]
fn a_peeled_loop_reloads_a_byte_its_body_stores() {
    // Each iteration increments byte 1: the loop may not reuse the preamble's load.
    let t = Trace::parse(
        "slots 1
         0000 input 0
         0001 loop
         0002 const #1
         0003 load.byte 0000 0002
         0004 add.ov 0003 0002 -> s0
         0005 store.byte 0000 0002 0004
         s0: [0]=0000",
    )
    .expect("parses");
    t.verify().expect("verifies");
    let got = optimize(&t, B);
    got.verify().expect("output verifies");
    let after_loop = got.to_string().split_once("loop").expect("a loop").1.to_string();
    assert_eq!(after_loop.matches("load.byte").count(), 1, "the loop loads the byte each time:\n{got}");
    assert_eq!(after_loop.matches("store.byte").count(), 1, "{got}");
}
