from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import services
        from executions import hooks, lifecycle

        hooks.register_approval_gate(services.approval_gate)
        # The gate reads each process's policy from a local copy; any save or delete (admin, shell, seed)
        # makes every process read the policies again.
        from approvals.models import ApprovalPolicy
        from heptora.local_cache import DEFINITIONS

        DEFINITIONS.renew_on_change(ApprovalPolicy)
        # In the transaction that holds the execution, so a held execution always has its request.
        lifecycle.subscribe(services.approval_request_create, events=[lifecycle.PROCESS_AWAITING_APPROVAL],
                            phase="transaction")
        lifecycle.subscribe(services.approval_request_close_for, events=[lifecycle.PROCESS_CANCELLED],
                            phase="transaction")
