from django.apps import AppConfig


class ApprovalsConfig(AppConfig):
    name = "approvals"
    verbose_name = "Approvals"

    def ready(self) -> None:
        from approvals import services
        from executions import hooks, lifecycle

        hooks.register_approval_gate(services.approval_gate)
        # The gate caches each process's policy; any save or delete (admin, shell, seed) forgets it.
        from django.db.models.signals import post_delete, post_save

        from approvals.models import ApprovalPolicy

        def forget(sender: type, instance: ApprovalPolicy, **kwargs: object) -> None:
            services.approval_policy_forget(instance.process.slug)

        post_save.connect(forget, sender=ApprovalPolicy, weak=False, dispatch_uid="approvals-policy-forget-save")
        post_delete.connect(forget, sender=ApprovalPolicy, weak=False, dispatch_uid="approvals-policy-forget-delete")
        # In the transaction that holds the execution, so a held execution always has its request.
        lifecycle.subscribe(services.approval_request_create, events=[lifecycle.PROCESS_AWAITING_APPROVAL],
                            phase="transaction")
        lifecycle.subscribe(services.approval_request_close_for, events=[lifecycle.PROCESS_CANCELLED],
                            phase="transaction")
