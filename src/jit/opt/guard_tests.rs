//! Optimizer tests for the division, kind, length, index, watch and element operations: IR text
//! in, the expected optimised IR text out.

use super::*;

use super::tests::check;

/// Edge and ordinary SmallInts for folding.
const INTS: [i32; 14] = [0, 1, -1, 2, -2, 7, -7, 13, -13, 65536, i32::MAX, i32::MIN, i32::MAX - 1, i32::MIN + 1];

#[test]
fn quo_and_rem_of_constants_fold_like_java() {
    for x in INTS {
        for y in INTS.into_iter().filter(|&y| y != 0) {
            for (op, answer) in [("quo", x.wrapping_div(y)), ("rem", x.wrapping_rem(y))] {
                check(
                    &format!(
                        "slots 1
                         0000 const #{x}
                         0001 const #{y}
                         0002 {op} 0000 0001 -> s0
                         0003 exit -> s1
                         s0:
                         s1: [0]=0002"
                    ),
                    &format!(
                        "slots 1
                         0000 const #{answer}
                         0001 exit -> s1
                         s0:
                         s1: [0]=0000"
                    ),
                );
            }
        }
    }
}

#[test]
fn min_by_minus_one_folds_to_min_and_zero() {
    // Java: MIN / -1 wraps to MIN; MIN % -1 is 0.
    for (op, answer) in [("quo", i32::MIN), ("rem", 0)] {
        check(
            &format!(
                "slots 1
                 0000 const #{}
                 0001 const #-1
                 0002 {op} 0000 0001 -> s0
                 0003 exit -> s1
                 s0:
                 s1: [0]=0002",
                i32::MIN
            ),
            &format!(
                "slots 1
                 0000 const #{answer}
                 0001 exit -> s1
                 s0:
                 s1: [0]=0000"
            ),
        );
    }
}

#[test]
fn a_zero_divisor_is_not_folded_away() {
    // Unchanged: the instruction must stay to exit.
    for op in ["quo", "rem"] {
        for x in [7, i32::MIN, -1] {
            let trace = format!(
                "slots 1
                 0000 const #{x}
                 0001 const #0
                 0002 {op} 0000 0001 -> s0
                 0003 exit -> s1
                 s0: [0]=0000
                 s1: [0]=0002"
            );
            check(&trace, &trace);
        }
        // Nor when only the divisor is known.
        let trace = format!(
            "slots 1
             0000 input 0
             0001 guard.int 0000 -> s0
             0002 const #0
             0003 {op} 0000 0002 -> s0
             0004 exit -> s1
             s0:
             s1: [0]=0003"
        );
        check(&trace, &trace);
    }
}

#[test]
fn repeated_divisions_are_shared_and_answer_smallints() {
    check(
        "slots 2
         0000 input 0
         0001 input 1
         0002 guard.int 0000 -> s0
         0003 guard.int 0001 -> s0
         0004 quo 0000 0001 -> s0
         0005 quo 0000 0001 -> s1
         0006 rem 0000 0001 -> s0
         0007 rem 0001 0000 -> s0
         0008 quo 0001 0000 -> s0
         0009 rem 0000 0001 -> s1
         0010 guard.int 0005 -> s0
         0011 guard.int 0009 -> s0
         0012 exit -> s1
         s0:
         s1: [0]=0005 [1]=0009",
        "slots 2
         0000 input 0
         0001 input 1
         0002 guard.int 0000 -> s0
         0003 guard.int 0001 -> s0
         0004 quo 0000 0001 -> s0
         0005 rem 0000 0001 -> s0
         0006 rem 0001 0000 -> s0
         0007 quo 0001 0000 -> s0
         0008 exit -> s1
         s0:
         s1: [0]=0004 [1]=0005",
    );
}

#[test]
fn divisions_by_an_unknown_or_a_nonzero_constant_stay() {
    // Unchanged: nothing folds with one operand unknown.
    let trace = "slots 2
         0000 input 0
         0001 input 1
         0002 guard.int 0000 -> s0
         0003 guard.int 0001 -> s0
         0004 const #2
         0005 quo 0000 0004 -> s0
         0006 rem 0004 0000 -> s0
         0007 quo 0001 0000 -> s0
         0008 exit -> s1
         s0:
         s1: [0]=0005 [1]=0006";
    check(trace, trace);
}

#[test]
fn repeated_kind_guards_go_and_other_kinds_or_values_stay() {
    check(
        "slots 2
         0000 input 0
         0001 guard.kind 0000 0 -> s0
         0002 guard.kind 0000 0 -> s1
         0003 input 1
         0004 guard.kind 0003 0 -> s0
         0005 guard.kind 0003 1 -> s0
         0006 guard.kind 0003 1 -> s0
         0007 guard.kind 0000 0 -> s0
         0008 exit -> s1
         s0:
         s1:",
        "slots 2
         0000 input 0
         0001 guard.kind 0000 0 -> s0
         0002 input 1
         0003 guard.kind 0002 0 -> s0
         0004 guard.kind 0002 1 -> s0
         0005 exit -> s1
         s0:
         s1:",
    );
}

#[test]
fn a_kind_guard_after_a_class_guard_stays() {
    // A class does not tell the kind of its instances to the optimizer.
    let trace = "slots 1
         0000 input 0
         0001 guard.class 0000 @1000 -> s0
         0002 guard.kind 0000 1 -> s0
         0003 guard.int 0000 -> s0
         0004 exit -> s1
         s0:
         s1:";
    check(trace, trace);
}

#[test]
fn a_length_guard_goes_when_a_larger_one_passed() {
    check(
        "slots 2
         0000 input 0
         0001 guard.len 0000 2 -> s0
         0002 guard.len 0000 2 -> s0
         0003 guard.len 0000 1 -> s0
         0004 guard.len 0000 0 -> s0
         0005 guard.len 0000 3 -> s0
         0006 guard.len 0000 2 -> s0
         0007 guard.len 0000 3 -> s0
         0008 input 1
         0009 guard.len 0008 1 -> s0
         0010 guard.len 0000 4294967295 -> s0
         0011 guard.len 0000 7 -> s0
         0012 exit -> s1
         s0:
         s1:",
        "slots 2
         0000 input 0
         0001 guard.len 0000 2 -> s0
         0002 guard.len 0000 3 -> s0
         0003 input 1
         0004 guard.len 0003 1 -> s0
         0005 guard.len 0000 4294967295 -> s0
         0006 exit -> s1
         s0:
         s1:",
    );
}

#[test]
fn repeated_index_guards_go() {
    check(
        "slots 3
         0000 input 0
         0001 input 1
         0002 guard.index 0000 0001 -> s0
         0003 guard.index 0000 0001 -> s1
         0004 input 2
         0005 guard.index 0000 0004 -> s0
         0006 guard.index 0004 0001 -> s0
         0007 guard.index 0001 0000 -> s0
         0008 guard.index 0000 0004 -> s0
         0009 exit -> s1
         s0:
         s1:",
        "slots 3
         0000 input 0
         0001 input 1
         0002 guard.index 0000 0001 -> s0
         0003 input 2
         0004 guard.index 0000 0003 -> s0
         0005 guard.index 0003 0001 -> s0
         0006 guard.index 0001 0000 -> s0
         0007 exit -> s1
         s0:
         s1:",
    );
}

#[test]
fn a_length_guard_implies_index_guards_for_constants_one_to_k_plus_one() {
    // Having more than k elements means that every index in 1..=k+1 is in range.
    for k in [0u32, 1, 2, 5, 1000] {
        let k1 = k as i64 + 1;
        for c in [i32::MIN as i64, -1, 0, 1, 2, k1 - 1, k1, k1 + 1, i32::MAX as i64] {
            let implied = 1 <= c && c <= k1;
            let input = format!(
                "slots 1
                 0000 input 0
                 0001 guard.len 0000 {k} -> s0
                 0002 const #{c}
                 0003 guard.index 0000 0002 -> s0
                 0004 exit -> s1
                 s0:
                 s1:"
            );
            let expected = if implied {
                format!(
                    "slots 1
                     0000 input 0
                     0001 guard.len 0000 {k} -> s0
                     0002 exit -> s1
                     s0:
                     s1:"
                )
            } else {
                input.clone()
            };
            check(&input, &expected);
        }
    }
}

#[test]
fn a_length_guard_implies_nothing_about_other_objects_or_earlier_guards() {
    let trace = "slots 2
         0000 input 0
         0001 input 1
         0002 const #1
         0003 guard.index 0000 0002 -> s0
         0004 guard.len 0000 4 -> s0
         0005 guard.index 0001 0002 -> s0
         0006 exit -> s1
         s0:
         s1:";
    check(trace, trace);
}

#[test]
fn repeated_unwatched_guards_go_even_across_stores() {
    // Only the interpreter sets watch flags, so a passed check holds for the rest of the trace.
    check(
        "slots 2
         0000 input 0
         0001 input 1
         0002 guard.unwatched 0000 -> s0
         0003 store.slot 0000 1 0001
         0004 guard.unwatched 0000 -> s1
         0005 guard.unwatched 0001 -> s0
         0006 const #1
         0007 store.elem 0000 0006 0001
         0008 guard.unwatched 0000 -> s0
         0009 guard.unwatched 0001 -> s0
         0010 exit -> s1
         s0:
         s1:",
        "slots 2
         0000 input 0
         0001 input 1
         0002 guard.unwatched 0000 -> s0
         0003 store.slot 0000 1 0001
         0004 guard.unwatched 0001 -> s0
         0005 const #1
         0006 store.elem 0000 0005 0001
         0007 exit -> s1
         s0:
         s1:",
    );
}

#[test]
fn element_loads_are_shared_until_a_slot_store() {
    check(
        "slots 5
         0000 input 0
         0001 input 1
         0002 input 2
         0003 load.elem 0000 0001
         0004 load.elem 0000 0001
         0005 load.elem 0002 0001
         0006 load.elem 0000 0002
         0007 store.slot 0002 0 0001
         0008 load.elem 0000 0001
         0009 load.elem 0000 0001
         0010 exit -> s0
         s0: [0]=0004 [1]=0005 [2]=0006 [3]=0008 [4]=0009",
        "slots 5
         0000 input 0
         0001 input 1
         0002 input 2
         0003 load.elem 0000 0001
         0004 load.elem 0002 0001
         0005 load.elem 0000 0002
         0006 store.slot 0002 0 0001
         0007 load.elem 0000 0001
         0008 exit -> s0
         s0: [0]=0003 [1]=0004 [2]=0005 [3]=0007 [4]=0007",
    );
}

#[test]
fn an_element_store_forwards_its_value_and_kills_other_loads() {
    // Other indices (which may be the same number) and slot loads of any object (which may be
    // the same object) are loaded again.
    check(
        "slots 7
         0000 input 0
         0001 input 1
         0002 input 2
         0003 input 3
         0004 input 4
         0005 load.slot 0000 1
         0006 load.elem 0000 0002
         0007 load.elem 0004 0001
         0008 store.elem 0000 0001 0003
         0009 load.elem 0000 0001
         0010 load.elem 0000 0002
         0011 load.elem 0004 0001
         0012 load.slot 0000 1
         0013 exit -> s0
         s0: [0]=0005 [1]=0006 [2]=0007 [3]=0009 [4]=0010 [5]=0011 [6]=0012",
        "slots 7
         0000 input 0
         0001 input 1
         0002 input 2
         0003 input 3
         0004 input 4
         0005 load.slot 0000 1
         0006 load.elem 0000 0002
         0007 load.elem 0004 0001
         0008 store.elem 0000 0001 0003
         0009 load.elem 0000 0002
         0010 load.elem 0004 0001
         0011 load.slot 0000 1
         0012 exit -> s0
         s0: [0]=0005 [1]=0006 [2]=0007 [3]=0003 [4]=0009 [5]=0010 [6]=0011",
    );
}

#[test]
fn slot_and_element_stores_kill_each_others_loads() {
    // A slot store kills element loads; a later element store kills the slot store's value.
    check(
        "slots 4
         0000 input 0
         0001 input 1
         0002 input 2
         0003 store.elem 0000 0001 0002
         0004 store.slot 0000 0 0001
         0005 load.elem 0000 0001
         0006 load.slot 0000 0
         0007 store.elem 0000 0001 0002
         0008 load.slot 0000 0
         0009 load.elem 0000 0001
         0010 exit -> s0
         s0: [0]=0005 [1]=0006 [2]=0008 [3]=0009",
        "slots 4
         0000 input 0
         0001 input 1
         0002 input 2
         0003 store.elem 0000 0001 0002
         0004 store.slot 0000 0 0001
         0005 load.elem 0000 0001
         0006 store.elem 0000 0001 0002
         0007 load.slot 0000 0
         0008 exit -> s0
         s0: [0]=0005 [1]=0001 [2]=0007 [3]=0002",
    );
}

#[test]
fn element_stores_stay_and_unused_element_loads_go() {
    check(
        "slots 2
         0000 input 0
         0001 input 1
         0002 load.elem 0000 0001
         0003 store.elem 0000 0001 0001
         0004 store.elem 0000 0001 0001
         0005 load.elem 0000 0001
         0006 exit -> s0
         s0:",
        "slots 2
         0000 input 0
         0001 input 1
         0002 store.elem 0000 0001 0001
         0003 store.elem 0000 0001 0001
         0004 exit -> s0
         s0:",
    );
}

#[test]
fn the_loop_forgets_elements_but_keeps_guard_facts_about_values_before_it() {
    // Facts about the object hold in every iteration; element values do not (the body stores);
    // facts found in the body hold for the rest of that iteration.
    check(
        "slots 2
         0000 input 0
         0001 input 1
         0002 guard.kind 0000 0 -> s0
         0003 guard.unwatched 0000 -> s0
         0004 guard.len 0000 1 -> s0
         0005 const #1
         0006 load.elem 0000 0005
         0007 guard.int 0006 -> s0
         0008 loop
         0009 phi 0001 0019
         0010 guard.kind 0000 0 -> s1
         0011 guard.unwatched 0000 -> s1
         0012 guard.len 0000 0 -> s1
         0013 guard.index 0000 0005 -> s1
         0014 guard.index 0000 0009 -> s1
         0015 load.elem 0000 0005
         0016 store.elem 0000 0009 0015
         0017 guard.index 0000 0009 -> s1
         0018 load.elem 0000 0009
         0019 add.ov 0009 0018 -> s1
         s0:
         s1: [1]=0009",
        "slots 2
         0000 input 0
         0001 input 1
         0002 guard.kind 0000 0 -> s0
         0003 guard.unwatched 0000 -> s0
         0004 guard.len 0000 1 -> s0
         0005 const #1
         0006 load.elem 0000 0005
         0007 guard.int 0006 -> s0
         0008 loop
         0009 phi 0001 0013
         0010 guard.index 0000 0009 -> s1
         0011 load.elem 0000 0005
         0012 store.elem 0000 0009 0011
         0013 add.ov 0009 0011 -> s1
         s0:
         s1: [1]=0009",
    );
}

#[test]
fn facts_about_a_phis_first_value_do_not_hold_for_the_phi() {
    // The phi is another object from the second iteration on: its guards stay. (The index guard
    // before the loop goes: it is implied by the length guard.)
    check(
        "slots 1
         0000 input 0
         0001 guard.kind 0000 0 -> s0
         0002 guard.unwatched 0000 -> s0
         0003 guard.len 0000 0 -> s0
         0004 const #1
         0005 guard.index 0000 0004 -> s0
         0006 loop
         0007 phi 0000 0011
         0008 guard.kind 0007 0 -> s0
         0009 guard.unwatched 0007 -> s0
         0010 guard.index 0007 0004 -> s0
         0011 load.elem 0007 0004
         s0: [0]=0000",
        "slots 1
         0000 input 0
         0001 guard.kind 0000 0 -> s0
         0002 guard.unwatched 0000 -> s0
         0003 guard.len 0000 0 -> s0
         0004 const #1
         0005 loop
         0006 phi 0000 0010
         0007 guard.kind 0006 0 -> s0
         0008 guard.unwatched 0006 -> s0
         0009 guard.index 0006 0004 -> s0
         0010 load.elem 0006 0004
         s0: [0]=0000",
    );
}

#[test]
fn new_operations_print_and_parse_back() {
    let text = "slots 3
0000 input 0
0001 input 1
0002 quo 0000 0001  -> s0
0003 rem 0000 0001  -> s0
0004 guard.kind 0000 3  -> s0
0005 guard.len 0000 2  -> s0
0006 guard.index 0000 0001  -> s0
0007 guard.unwatched 0000  -> s0
0008 load.elem 0000 0001
0009 store.elem 0000 0001 0008
0010 exit  -> s1
s0: [2]=0003
s1: [2]=0002
";
    let t = Trace::parse(text).unwrap();
    assert_eq!(t.to_string(), text);
    t.verify().unwrap();
    assert_eq!(t.insts[4].op, Op::GuardKind(Ref(0), crate::heap::Kind::Host as u8));
}
