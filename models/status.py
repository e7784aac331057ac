"""The life cycle of a service request, shared by the service, the re-plan step and the simulator."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    """open -> planned -> dispatched -> in_progress -> done | failed | cancelled.

    `failed` jobs go back into the pool (with their priority raised); `done` and `cancelled` leave it.
    """

    OPEN = "open"
    PLANNED = "planned"
    DISPATCHED = "dispatched"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobStatus.DONE, JobStatus.CANCELLED)


class VisitStatus(StrEnum):
    """What a technician reports from the road."""

    EN_ROUTE = "en_route"
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"


#: The job status a technician's report moves the job to.
VISIT_TO_JOB = {
    VisitStatus.EN_ROUTE: JobStatus.IN_PROGRESS,
    VisitStatus.STARTED: JobStatus.IN_PROGRESS,
    VisitStatus.COMPLETED: JobStatus.DONE,
    VisitStatus.FAILED: JobStatus.FAILED,
}
