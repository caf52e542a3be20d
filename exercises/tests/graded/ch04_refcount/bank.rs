//! The `Bank` trials: transfers move money, refuse what they cannot do,
//! finish when they go in opposite directions, and a self-transfer is
//! handled.

use std::panic;
use std::sync::Barrier;
use std::thread;

use exercises::ch04_refcount::{Bank, TransferError};

/// The three balances of a bank of three accounts.
fn balances(bank: &Bank) -> [Option<u64>; 3] {
    [0, 1, 2].map(|account| bank.balance(account))
}

pub(super) fn moves_money() {
    let bank = Bank::new(&[100, 50, 0]);
    assert_eq!(bank.transfer(0, 2, 30), Ok(()));
    assert_eq!(balances(&bank), [70, 50, 30].map(Some));
    assert_eq!(
        bank.transfer(1, 0, 51),
        Err(TransferError::InsufficientFunds),
        "account 1 holds only 50"
    );
    assert_eq!(
        balances(&bank),
        [70, 50, 30].map(Some),
        "a refused transfer of 51 from account 1 (50) to account 0 (70) \
         must change neither account: refuse before writing either"
    );
    assert_eq!(
        bank.transfer(1, 2, 50),
        Ok(()),
        "account 1 holds exactly 50, so it can pay 50"
    );
    assert_eq!(balances(&bank), [70, 0, 80].map(Some));
    assert_eq!(bank.transfer(0, 9, 1), Err(TransferError::NoSuchAccount));
    for (from, to) in [(0, 9), (2, 9)] {
        assert_eq!(
            bank.transfer(from, to, 1_000),
            Err(TransferError::NoSuchAccount),
            "a transfer of 1000 from {from} to 9: account 9 does not exist, \
             whatever the amount (more than account {from} holds too); \
             check the accounts before the funds"
        );
    }
    for (from, to) in [(0, 9), (9, 0), (9, 9)] {
        assert_eq!(
            bank.transfer(from, to, 0),
            Err(TransferError::NoSuchAccount),
            "a transfer of 0 from {from} to {to}: account 9 does not exist, \
             whatever the amount; check the accounts before anything else"
        );
    }
    assert_eq!(
        bank.transfer(9, 0, 1),
        Err(TransferError::NoSuchAccount),
        "account 9 does not exist, so it cannot pay"
    );
    // Account 3, one past the last of three: the fence post.
    for (from, to) in [(0, 3), (3, 0), (3, 3)] {
        let moved = match panic::catch_unwind(|| bank.transfer(from, to, 1)) {
            Ok(Err(TransferError::NoSuchAccount)) => continue,
            Ok(other) => format!("{other:?}"),
            Err(_) => String::from("a panic"),
        };
        panic!(
            "a transfer of 1 from {from} to {to} in a bank of three \
             accounts (0, 1 and 2) must return Err(NoSuchAccount), not \
             {moved}: account 3 does not exist (an index equal to the \
             number of accounts is already out of bounds: `>=`, not `>`)"
        );
    }
    assert_eq!(
        balances(&bank),
        [70, 0, 80].map(Some),
        "a transfer from or to an account that does not exist changes \
         nothing"
    );
    assert_eq!(bank.balance(9), None);
    assert_eq!(bank.balance(3), None, "account 3 does not exist");
    assert!(
        bank.try_lock_for_tests(9).is_none(),
        "try_lock_for_tests(9) of a bank of three accounts must be None"
    );
    // The balance behind the account's lock is the one `balance` reads and
    // `transfer` moves: no copy kept beside it can go stale.
    *bank
        .try_lock_for_tests(2)
        .expect("try_lock_for_tests: nobody holds account 2") = 60;
    assert_eq!(
        bank.balance(2),
        Some(60),
        "account 2's balance was set to 60 through its lock \
         (try_lock_for_tests), yet balance(2) did not read 60: balance must \
         read the account under its lock, not a copy published beside it \
         (a copy that transfers publish after letting go of the locks can \
         be overwritten by a slower transfer's older numbers, and stay \
         wrong for good)"
    );
    assert_eq!(bank.transfer(2, 0, 60), Ok(()), "account 2 holds 60");
    assert_eq!(balances(&bank), [130, 0, 0].map(Some));
    // A `u64` amount above `i64::MAX` is money like any other, not a
    // negative number that wrapped.
    let big = 1 << 63;
    let bank = Bank::new(&[u64::MAX, 0]);
    for (amount, left) in [(big, u64::MAX - big), (u64::MAX - big, 0)] {
        assert_eq!(
            bank.transfer(0, 1, amount),
            Ok(()),
            "account 0 holds {}, so it can pay {amount} (more than \
             i64::MAX, which is still an amount, not a negative one)",
            amount + left
        );
    }
    assert_eq!(bank.transfer(1, 0, u64::MAX), Ok(()), "its whole balance");
    assert_eq!([0, 1].map(|a| bank.balance(a)), [u64::MAX, 0].map(Some));
    // A refused transfer computes no credit: its target may hold nearly the
    // bank's whole total, and `target + amount` would overflow.
    for (start, amount) in [([0, u64::MAX], 1), ([5, u64::MAX - 5], u64::MAX)] {
        let bank = Bank::new(&start);
        let refused = match panic::catch_unwind(|| bank.transfer(0, 1, amount))
        {
            Ok(Err(TransferError::InsufficientFunds)) => true,
            Ok(other) => panic!(
                "a transfer of {amount} from account 0 ({}) to account 1 \
                 ({}) returned {other:?}: account 0 cannot pay it",
                start[0], start[1]
            ),
            Err(_) => false,
        };
        assert!(
            refused,
            "a transfer of {amount} from account 0 ({}) to account 1 ({}) \
             panicked instead of returning Err(InsufficientFunds): account 0 \
             cannot pay it, so account 1 is never credited, yet its new \
             balance (which would overflow) was computed anyway; check the \
             source's balance first, and compute the credit only for a \
             transfer that goes through",
            start[0], start[1]
        );
        assert_eq!(
            [0, 1].map(|a| bank.balance(a)),
            start.map(Some),
            "a refused transfer changes neither account"
        );
    }
    // A bank with no accounts: every account number is out of bounds, and
    // there is no last account to compare with (`len() - 1` overflows).
    let empty = Bank::new(&[]);
    for (from, to, amount) in [(0, 0, 1), (0, 1, 0), (1, 0, 0)] {
        let moved =
            match panic::catch_unwind(|| empty.transfer(from, to, amount)) {
                Ok(Err(TransferError::NoSuchAccount)) => continue,
                Ok(other) => format!("{other:?}"),
                Err(_) => String::from("a panic"),
            };
        panic!(
            "a transfer of {amount} from {from} to {to} in a bank with no \
             accounts (Bank::new(&[])) must return Err(NoSuchAccount), not \
             {moved}: no account exists (and `len() - 1` overflows when \
             the bank is empty: compare with `>= len()`)"
        );
    }
    assert_eq!(empty.balance(0), None, "a bank with no accounts");
}

/// Eight threads move money back and forth between the same two accounts,
/// four in each direction, restarting together at a barrier for every batch
/// so that opposite transfers keep overlapping. More threads than cores
/// means threads are preempted between their two locks, which is when a
/// bad lock order deadlocks, even on a loaded machine. First, three
/// transfers around a cycle must not each hold their source account while
/// they wait for their target (`transit`).
pub(super) fn opposite_transfers_finish() {
    super::transit::a_cycle_of_transfers_holds_no_cycle();
    const BATCHES: usize = 100;
    const PER_BATCH: usize = 2_000;
    let bank = Bank::new(&[1_000, 1_000]);
    let directions = [(0, 1), (1, 0)].repeat(4);
    let start = Barrier::new(directions.len());
    thread::scope(|s| {
        for (from, to) in directions {
            let (bank, start) = (&bank, &start);
            s.spawn(move || {
                for _ in 0..BATCHES {
                    start.wait();
                    for _ in 0..PER_BATCH {
                        let _ = bank.transfer(from, to, 7);
                    }
                }
            });
        }
    });
    let total = bank.balance(0).unwrap() + bank.balance(1).unwrap();
    assert_eq!(total, 2_000, "money was created or destroyed");
}

pub(super) fn self_transfer() {
    let bank = Bank::new(&[40]);
    assert_eq!(bank.transfer(0, 0, 25), Ok(()), "to itself: allowed");
    assert_eq!(bank.balance(0), Some(40), "and changes nothing");
    assert_eq!(
        bank.transfer(0, 0, 40),
        Ok(()),
        "a transfer of 40 from account 0 to itself, which holds exactly 40, \
         was refused: a source can pay up to its whole balance, also to \
         itself (compare with `>=`, as a transfer between two accounts \
         does)"
    );
    assert_eq!(bank.balance(0), Some(40), "and changes nothing");
    assert_eq!(
        bank.transfer(0, 0, 41),
        Err(TransferError::InsufficientFunds),
        "still limited by the balance"
    );
}
