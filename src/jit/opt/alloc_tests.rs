//! Optimizer tests for objects the trace allocates (`New`): what is known about them, and what a
//! store into one, or into an object that may be one, keeps.

use super::tests::check;

#[test]
fn a_new_objects_class_kind_length_and_watch_flags_need_no_guards() {
    check(
        "slots 2
         0000 input 0
         0001 const #2
         0002 new 0001 @1000 -> s0
         0003 guard.class 0002 @1000 -> s0
         0004 guard.kind 0002 0 -> s0
         0005 guard.len 0002 1 -> s0
         0006 guard.unwatched 0002 -> s0
         0007 store.slot 0002 1 0000
         0008 exit -> s1
         s0:
         s1: [1]=0002",
        "slots 2
         0000 input 0
         0001 const #2
         0002 new 0001 @1000 -> s0
         0003 store.slot 0002 1 0000
         0004 exit -> s1
         s0:
         s1: [1]=0002",
    );
}

#[test]
fn a_length_known_only_at_run_time_leaves_the_length_guard() {
    check(
        "slots 2
         0000 input 0
         0001 new 0000 @1000 -> s0
         0002 guard.len 0001 1 -> s0
         0003 guard.class 0001 @1000 -> s0
         0004 exit -> s1
         s0:
         s1: [1]=0001",
        "slots 2
         0000 input 0
         0001 new 0000 @1000 -> s0
         0002 guard.len 0001 1 -> s0
         0003 exit -> s1
         s0:
         s1: [1]=0001",
    );
}

#[test]
fn two_allocations_are_never_shared() {
    check(
        "slots 2
         0000 const #1
         0001 new 0000 @1000 -> s0
         0002 new 0000 @1000 -> s0
         0003 exit -> s1
         s0:
         s1: [0]=0001 [1]=0002",
        "slots 2
         0000 const #1
         0001 new 0000 @1000 -> s0
         0002 new 0000 @1000 -> s0
         0003 exit -> s1
         s0:
         s1: [0]=0001 [1]=0002",
    );
}

#[test]
fn a_store_into_a_new_object_keeps_loads_from_older_objects_without_a_guard() {
    check(
        "slots 2
         0000 input 0
         0001 load.slot 0000 0
         0002 guard.int 0001 -> s0
         0003 const #1
         0004 new 0003 @1000 -> s0
         0005 store.slot 0004 0 0001
         0006 load.slot 0000 0
         0007 exit -> s1
         s0:
         s1: [1]=0006",
        "slots 2
         0000 input 0
         0001 load.slot 0000 0
         0002 guard.int 0001 -> s0
         0003 const #1
         0004 new 0003 @1000 -> s0
         0005 store.slot 0004 0 0001
         0006 exit -> s1
         s0:
         s1: [1]=0001",
    );
}

#[test]
fn an_object_loaded_after_the_allocation_may_be_the_new_object() {
    // y.0 := n; p := w.0 (w may be y, so p may be n); p.0 := in1. n.0 still holds in0 only
    // behind a guard that p ≠ n: being allocated after p was loaded is not something n is.
    check(
        "slots 3
         0000 input 0
         0001 input 1
         0002 input 2
         0003 const #1
         0004 new 0003 @1000 -> s0
         0005 store.slot 0004 0 0000
         0006 store.slot 0001 0 0004
         0007 load.slot 0002 0
         0008 guard.class 0007 @1000 -> s1
         0009 store.slot 0007 0 0001
         0010 load.slot 0004 0
         0011 exit -> s2
         s0:
         s1: [0]=0000
         s2: [0]=0010",
        "slots 3
         0000 input 0
         0001 input 1
         0002 input 2
         0003 const #1
         0004 new 0003 @1000 -> s0
         0005 store.slot 0004 0 0000
         0006 store.slot 0001 0 0004
         0007 load.slot 0002 0
         0008 guard.class 0007 @1000 -> s1
         0009 guard.ne 0007 0001 -> s3
         0010 guard.ne 0007 0002 -> s4
         0011 guard.ne 0007 0004 -> s5
         0012 store.slot 0007 0 0001
         0013 exit -> s2
         s0:
         s1: [0]=0000
         s2: [0]=0000
         s3=s1: [0]=0000
         s4=s1: [0]=0000
         s5=s1: [0]=0000",
    );
}

#[test]
fn helper_results_carry_their_class_and_kind_and_are_never_shared() {
    // A Float made with a constant class needs no class or kind guard; a comparison answers a
    // SmallInt; two identical calls are two calls (each allocates, or reads bytes that change).
    check(
        "slots 3
         0000 input 0
         0001 input 1
         0002 const @2000
         0003 call float.add 0002 0000 0001 -> s0
         0004 guard.class 0003 @2000 -> s0
         0005 guard.kind 0003 2 -> s0
         0006 call float.add 0002 0000 0001 -> s0
         0007 call bytes.compare 0000 0001 0001 -> s0
         0008 guard.int 0007 -> s0
         0009 exit -> s1
         s0:
         s1: [0]=0003 [1]=0006 [2]=0007",
        "slots 3
         0000 input 0
         0001 input 1
         0002 const @2000
         0003 call float.add 0002 0000 0001 -> s0
         0004 call float.add 0002 0000 0001 -> s0
         0005 call bytes.compare 0000 0001 0001 -> s0
         0006 exit -> s1
         s0:
         s1: [0]=0003 [1]=0004 [2]=0005",
    );
}
