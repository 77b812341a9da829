//! The table of executions: the outbox of reports that gave their slot back.

use jobs_model::ExecutionId;

use super::{Admission, Executions};

fn idle_task() -> tokio::task::JoinHandle<super::TaskOutput> {
    tokio::spawn(std::future::pending())
}

fn admit(executions: &Executions, id: ExecutionId) -> Admission {
    executions.admit(id, 1, false, idle_task)
}

#[tokio::test]
async fn a_report_in_the_outbox_gives_its_slot_back_but_stays_known() {
    let executions = Executions::new(1);
    let (first, second) = (ExecutionId::new(), ExecutionId::new());
    assert!(matches!(admit(&executions, first), Admission::Accepted(_)));
    assert!(matches!(admit(&executions, second), Admission::Busy { running: 1 }));

    executions.reporting(first, 1);
    assert_eq!(executions.load(), 0.0);
    assert!(matches!(admit(&executions, second), Admission::Accepted(_)));
    // Still listed for heartbeats, and a repeated dispatch of it is a duplicate, until its report is through.
    assert!(executions.ids().contains(&first));
    assert!(matches!(admit(&executions, first), Admission::Duplicate));

    executions.finish(first, 1);
    assert_eq!(executions.ids(), vec![second]);
    assert!(matches!(admit(&executions, first), Admission::Duplicate));
}

#[tokio::test]
async fn a_full_outbox_keeps_the_slot_taken() {
    let executions = Executions::new(1);
    let mut reported = Vec::new();
    for _ in 0..super::OUTBOX_PER_SLOT {
        let id = ExecutionId::new();
        assert!(matches!(admit(&executions, id), Admission::Accepted(_)));
        executions.reporting(id, 1);
        reported.push(id);
    }
    let last = ExecutionId::new();
    assert!(matches!(admit(&executions, last), Admission::Accepted(_)));
    executions.reporting(last, 1);
    assert!(matches!(admit(&executions, ExecutionId::new()), Admission::Busy { running: 1 }));

    executions.finish(reported[0], 1);
    executions.finish(last, 1);
    assert!(matches!(admit(&executions, ExecutionId::new()), Admission::Accepted(_)));
}
