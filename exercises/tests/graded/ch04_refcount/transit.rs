//! A transfer stopped halfway: the trial holds one account's lock (through
//! `Bank::try_lock_for_tests`), starts a transfer that needs it on another
//! thread, and waits until that thread sleeps on a lock (in a wait with
//! no timeout: a transfer that sleeps a while and tries again fails). The
//! transfer is then as far as it can go, so what the trial sees meanwhile
//! is what any thread could see at that moment: money in transit, or a
//! bank that makes every other transfer wait too. When
//! `try_lock_for_tests` says the other account is locked, the trial does
//! not take its word for it: `balance` of that account, on a thread of its
//! own, must then wait too, or show the account as it was.
//!
//! Whether a thread sleeps is read from Linux's `/proc`, which lists each
//! thread of this process with its state: `S` while it waits for a lock
//! (`course::grader::task`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::{self, ScopedJoinHandle};
use std::time::Duration;

use course::grader::task::{self, Wait, asleep};
use exercises::ch04_refcount::{Bank, TransferError};

/// Starts `bank.transfer(from, to, amount)` on a thread of `scope`, and
/// returns once that thread sleeps inside it, waiting for a lock the trial
/// holds. A transfer that never waits (it spins, or does not need the
/// held account) makes the trial time out.
fn start_transfer<'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    bank: &'scope Bank,
    (from, to, amount): (usize, usize, u64),
) -> ScopedJoinHandle<'scope, Result<(), TransferError>> {
    let (tell, told) = mpsc::channel();
    let handle = scope.spawn(move || {
        tell.send(task::me().tid).unwrap();
        bank.transfer(from, to, amount)
    });
    let tid = told.recv().expect("the transfer's thread ended at once");
    // No deadline: the trial's timeout reports a transfer that never waits.
    // A transfer that sleeps a while and tries again never blocks in a
    // wait with no timeout, so it is seen asleep in one that has one.
    loop {
        match task::wait(tid) {
            Some((Wait::UntilWoken, _)) => break,
            Some((Wait::UntilADeadline, line)) => panic!(
                "a transfer that needs an account another thread holds \
                 slept in a wait that ends by itself \
                 (/proc/self/task/<tid>/syscall: {line}), not on the \
                 account's lock until it is let go: it polls (try_lock, \
                 then thread::sleep and try again?). Wait on the lock \
                 itself (lock(), in one global order), so that the \
                 holder's unlock wakes the transfer"
            ),
            _ => thread::sleep(Duration::from_millis(1)),
        }
    }
    handle
}

/// Reads `bank.balance(account)` on a thread of `scope`, and returns once
/// that thread has either read it or gone to sleep waiting for the
/// account's lock. The thread's result is the balance it read and whether
/// `released` was already set when it had read it.
fn start_balance<'scope>(
    scope: &'scope thread::Scope<'scope, '_>,
    bank: &'scope Bank,
    account: usize,
    released: &'scope AtomicBool,
) -> ScopedJoinHandle<'scope, (Option<u64>, bool)> {
    let (tell, told) = mpsc::channel();
    let handle = scope.spawn(move || {
        tell.send(task::me().tid).unwrap();
        let seen = bank.balance(account);
        (seen, released.load(Ordering::SeqCst))
    });
    let tid = told.recv().expect("the balance's thread ended at once");
    // No deadline: the trial's timeout reports a `balance` that spins.
    while !handle.is_finished() && !asleep(tid) {
        thread::sleep(Duration::from_millis(1));
    }
    handle
}

/// The thread's result, or its panic passed on.
fn result_of<T>(handle: ScopedJoinHandle<'_, T>) -> T {
    handle
        .join()
        .unwrap_or_else(|payload| std::panic::resume_unwind(payload))
}

/// While a transfer waits for one of its two accounts, the other holds
/// either its old balance or a lock: never the money debited but not yet
/// credited, nor credited but not yet debited. Every pair of held account
/// and direction, so that any fixed lock order is met both ways. A lock
/// that `try_lock_for_tests` reports is checked with `balance` on another
/// thread: it must wait for the account, or read it unchanged, while the
/// trial still holds the first account.
pub fn no_money_in_transit() {
    one_balance_pays_once();
    const START: u64 = 100;
    const AMOUNT: u64 = 10;
    for (from, to) in [(0, 1), (1, 0)] {
        for held in [to, from] {
            let other = if held == from { to } else { from };
            let bank = Bank::new(&[START, START]);
            let released = AtomicBool::new(false);
            thread::scope(|s| {
                let guard = bank
                    .try_lock_for_tests(held)
                    .expect("try_lock_for_tests: nobody holds the account");
                let transfer = start_transfer(s, &bank, (from, to, AMOUNT));
                let mut reader = None;
                if let Some(seen) = bank.try_lock_for_tests(other) {
                    let (held_balance, seen) = (*guard, *seen);
                    assert!(
                        held_balance == START && seen == START,
                        "a transfer of {AMOUNT} from account {from} to \
                         {to}, waiting for account {held}'s lock, had left \
                         account {other} unlocked at {seen} while account \
                         {held} held {held_balance}: the money was in \
                         {} for all to see; hold both accounts' locks \
                         from before the debit until after the credit",
                        if seen + held_balance < 2 * START {
                            "neither account"
                        } else {
                            "both accounts"
                        }
                    );
                } else {
                    reader = Some(start_balance(s, &bank, other, &released));
                }
                // Whatever the reader has read by now, it read while the
                // transfer was still stopped.
                released.store(true, Ordering::SeqCst);
                drop(guard);
                assert_eq!(result_of(transfer), Ok(()));
                if let Some((seen, false)) = reader.map(result_of) {
                    assert!(
                        seen == Some(START),
                        "while a transfer of {AMOUNT} from account {from} \
                         to {to} waited for account {held}'s lock, \
                         try_lock_for_tests({other}) said account {other} \
                         was locked, yet balance({other}) read {seen:?} at \
                         once, not {START}: the money was in transit for \
                         all to see; hold both accounts' locks from before \
                         the debit until after the credit, and let \
                         try_lock_for_tests answer for the account's own \
                         lock"
                    );
                }
            });
            assert_eq!(bank.balance(from), Some(START - AMOUNT));
            assert_eq!(bank.balance(to), Some(START + AMOUNT));
        }
    }
}

/// Two transfers of all of account 1's money, one to account 0 and one to
/// account 2. The first is stopped on its target's lock, which the trial
/// holds, after whatever it checks before locking; the second then goes
/// through, or waits for the first (if that one holds account 1). Once the
/// trial lets go, one of the two must be paid and the other refused. A
/// transfer that checks the source's balance before it takes the locks
/// lets both pass that check, and the second then debits money the first
/// has already taken. Each target is the held one in turn, so that the
/// stopped transfer holds nothing while it waits in one of the two rounds,
/// whichever order a bank locks two accounts in.
fn one_balance_pays_once() {
    const START: u64 = 10;
    for (stopped, other) in [(0, 2), (2, 0)] {
        let bank = Bank::new(&[0, START, 0]);
        let (first, second) = thread::scope(|s| {
            let guard = bank
                .try_lock_for_tests(stopped)
                .expect("try_lock_for_tests: nobody holds the account");
            let first = start_transfer(s, &bank, (1, stopped, START));
            let (tell, told) = mpsc::channel();
            let bank = &bank;
            let second = s.spawn(move || {
                tell.send(task::me().tid).unwrap();
                bank.transfer(1, other, START)
            });
            let tid = told.recv().expect("the transfer's thread ended at once");
            // No deadline: the trial's timeout reports a transfer that
            // neither finishes nor blocks on a lock.
            while !second.is_finished()
                && !matches!(task::wait(tid), Some((Wait::UntilWoken, _)))
            {
                thread::sleep(Duration::from_millis(1));
            }
            drop(guard);
            (first.join(), second.join())
        });
        let outcome = |to: usize, result| match result {
            Ok(Ok(())) => format!("the one to account {to} was paid"),
            Ok(Err(error)) => {
                format!("the one to account {to} returned Err({error:?})")
            }
            Err(_) => format!("the one to account {to} panicked"),
        };
        let paid = [&first, &second]
            .into_iter()
            .filter(|result| matches!(result, Ok(Ok(()))))
            .count();
        let refused = [&first, &second]
            .into_iter()
            .filter(|result| {
                matches!(result, Ok(Err(TransferError::InsufficientFunds)))
            })
            .count();
        assert!(
            paid == 1 && refused == 1,
            "account 1 held {START}, and two transfers of {START} out of it \
             overlapped, the one to account {stopped} waiting for that \
             account's lock meanwhile: {} and {}, but exactly one of them \
             can be paid and the other must return Err(InsufficientFunds). \
             Check the source's balance under both accounts' locks, right \
             before the debit, not before taking them: two transfers can \
             both pass an early check, and the second then takes money the \
             first already took",
            outcome(stopped, first),
            outcome(other, second)
        );
        let balances: Vec<_> = (0..3).map(|a| bank.balance(a)).collect();
        assert!(
            balances[1] == Some(0)
                && balances[0].zip(balances[2]).map(|(a, b)| a + b)
                    == Some(START),
            "after one of two transfers of {START} out of account 1 \
             ({START}) was paid, the balances were {balances:?}: the money \
             must have moved whole"
        );
    }
}

/// While a transfer between accounts 0 and 1 waits for a lock, in either
/// direction, transfers between every other pair of a bank of 1024
/// accounts finish, both ways: they share no account with the first. And
/// while one from account 0 to account 3 waits for account 3 (holding
/// account 0, if it locks the lower account first), transfers between
/// accounts 1 and 2, which lie between them, finish too. Meanwhile
/// `balance` of each of those other accounts returns, on the trial's own
/// thread, which holds the account the transfer waits for. A lock around
/// every transfer, or around every transfer in one direction, a lock on
/// every account from the lower to the higher, a few locks shared by
/// many accounts (account `n` taking lock `n % 4`, say), or a `balance`
/// that locks more accounts than the one it reads, makes some of them
/// wait, and the trial time out.
pub fn disjoint_transfers_run_at_once() {
    const ACCOUNTS: usize = 1024;
    for waiting in [(0, 1), (1, 0)] {
        let bank = Bank::new(&[100; ACCOUNTS]);
        thread::scope(|s| {
            let guard = bank
                .try_lock_for_tests(0)
                .expect("try_lock_for_tests: nobody holds the account");
            let (from, to) = waiting;
            let waiting = start_transfer(s, &bank, (from, to, 10));
            // Hangs if one of these transfers waits for the one above.
            for low in (2..ACCOUNTS).step_by(2) {
                assert_eq!(bank.transfer(low, low + 1, 10), Ok(()));
                assert_eq!(bank.transfer(low + 1, low, 30), Ok(()));
            }
            // Hangs if `balance` waits for an account it does not read,
            // such as account 0, which this thread holds.
            for low in (2..ACCOUNTS).step_by(2) {
                assert_eq!(bank.balance(low), Some(120));
                assert_eq!(bank.balance(low + 1), Some(80));
            }
            drop(guard);
            assert_eq!(result_of(waiting), Ok(()));
        });
        let (from, to) = waiting;
        for account in 0..ACCOUNTS {
            let expected = match account {
                _ if account == from => 90,
                _ if account == to => 110,
                _ if account % 2 == 0 => 120,
                _ => 80,
            };
            assert_eq!(bank.balance(account), Some(expected));
        }
    }
    let bank = Bank::new(&[100; 4]);
    thread::scope(|s| {
        let guard = bank
            .try_lock_for_tests(3)
            .expect("try_lock_for_tests: nobody holds the account");
        let waiting = start_transfer(s, &bank, (0, 3, 10));
        // Hangs if this transfer waits for the one above, which holds or
        // waits for accounts 0 and 3 only.
        assert_eq!(bank.transfer(1, 2, 10), Ok(()));
        assert_eq!(bank.transfer(2, 1, 30), Ok(()));
        // Hangs if `balance` waits for an account it does not read.
        assert_eq!(bank.balance(1), Some(120));
        assert_eq!(bank.balance(2), Some(80));
        drop(guard);
        assert_eq!(result_of(waiting), Ok(()));
    });
    let balances: Vec<_> = (0..4).map(|a| bank.balance(a)).collect();
    assert_eq!(balances, [90, 120, 80, 110].map(Some));
}

/// Three transfers around a cycle, `0` to `1`, `1` to `2` and `2` to `0`,
/// each stopped in turn on its target account, which the trial holds:
/// if every one of them holds its source account while it waits, then the
/// three started at once can each hold one account and wait for the next
/// one's, for ever. That deadlock needs the three to reach their first
/// lock in one particular order, so the trial does not wait for it: it
/// looks at what each transfer holds while it waits. Locking the two
/// accounts in one order that every transfer follows (the lower number
/// first) leaves at least one of the three holding nothing while it waits.
/// Two opposite transfers taking turns on a lock of their pair, then
/// locking their source first, hold their source every time.
pub fn a_cycle_of_transfers_holds_no_cycle() {
    const START: u64 = 100;
    let cycle = [(0, 1), (1, 2), (2, 0)];
    let mut held_sources = Vec::new();
    for (from, to) in cycle {
        let bank = Bank::new(&[START; 3]);
        thread::scope(|s| {
            let guard = bank
                .try_lock_for_tests(to)
                .expect("try_lock_for_tests: nobody holds the account");
            let transfer = start_transfer(s, &bank, (from, to, 10));
            if bank.try_lock_for_tests(from).is_none() {
                held_sources.push(format!(
                    "the transfer from {from} to {to} held account {from} \
                     while it waited for account {to}"
                ));
            }
            drop(guard);
            assert_eq!(result_of(transfer), Ok(()));
        });
    }
    assert!(
        held_sources.len() < cycle.len(),
        "{}: started at once, these three transfers can each hold one \
         account and wait for the next one's, a deadlock. Making opposite \
         transfers between two accounts take turns does not prevent it; lock \
         the two accounts in one global order (the lower number first), \
         whatever the direction",
        held_sources.join("; ")
    );
}
