from django.urls import path

from api_app.views import account, approvals, chat, executions, processes, webhooks

app_name = "api"

urlpatterns = [
    path("me", account.MeView.as_view(), name="me"),
    path("processes/", processes.ProcessListView.as_view(), name="process-list"),
    path("processes/<slug:process_id>/", processes.ProcessDetailView.as_view(), name="process-detail"),
    path("processes/<slug:process_id>/execute", processes.ExecuteView.as_view(), name="process-execute"),
    path("processes/<slug:process_id>/execute/batch", processes.ExecuteBatchView.as_view(),
         name="process-execute-batch"),
    path("processes/<slug:process_id>/validate", processes.ValidateView.as_view(), name="process-validate"),
    path("executions/", executions.ExecutionListView.as_view(), name="execution-list"),
    path("executions/<str:execution_id>", executions.ExecutionDetailView.as_view(), name="execution-detail"),
    path("executions/<str:execution_id>/events", executions.ExecutionEventsView.as_view(), name="execution-events"),
    path("executions/<str:execution_id>/cancel", executions.ExecutionCancelView.as_view(), name="execution-cancel"),
    path("executions/<str:execution_id>/retry", executions.ExecutionRetryView.as_view(), name="execution-retry"),
    path("executions/<str:execution_id>/approve", approvals.ExecutionApproveView.as_view(), name="execution-approve"),
    path("executions/<str:execution_id>/reject", approvals.ExecutionRejectView.as_view(), name="execution-reject"),
    path("webhooks/", webhooks.WebhookListView.as_view(), name="webhook-list"),
    path("webhooks/callback-secret", webhooks.CallbackSecretView.as_view(), name="webhook-callback-secret"),
    path("webhooks/deliveries/<str:delivery_id>/redeliver", webhooks.DeliveryRedeliverView.as_view(),
         name="webhook-redeliver"),
    path("webhooks/<str:webhook_id>", webhooks.WebhookDetailView.as_view(), name="webhook-detail"),
    path("webhooks/<str:webhook_id>/test", webhooks.WebhookTestView.as_view(), name="webhook-test"),
    path("webhooks/<str:webhook_id>/rotate-secret", webhooks.WebhookRotateSecretView.as_view(),
         name="webhook-rotate-secret"),
    path("webhooks/<str:webhook_id>/deliveries", webhooks.WebhookDeliveriesView.as_view(), name="webhook-deliveries"),
    path("chat/messages", chat.ChatMessageView.as_view(), name="chat-messages"),
    path("chat/conversations/<str:conversation_id>/messages", chat.ChatConversationMessagesView.as_view(),
         name="chat-conversation-messages"),
]
