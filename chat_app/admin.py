from __future__ import annotations

from django.contrib import admin

from chat_app.models import ChatIdentity, Conversation, Message, ProcessChatConfig


@admin.register(ProcessChatConfig)
class ProcessChatConfigAdmin(admin.ModelAdmin):
    list_display = ["process", "use_code_phrases", "ask_fields", "updated_at"]
    search_fields = ["process__slug", "process__name", "phrases", "examples"]
    autocomplete_fields: list[str] = []
    fields = ["process", "phrases", "examples", "use_code_phrases", "ask_fields"]


@admin.register(ChatIdentity)
class ChatIdentityAdmin(admin.ModelAdmin):
    list_display = ["channel", "external_id", "display_name", "user", "linked_at"]
    list_filter = ["channel"]
    search_fields = ["external_id", "display_name", "user__username"]
    readonly_fields = ["channel", "external_id", "created_at", "linked_at", "failed_link_attempts"]
    fields = ["channel", "external_id", "display_name", "user", "linked_at", "failed_link_attempts",
              "link_locked_until", "created_at"]


class MessageInline(admin.TabularInline):
    model = Message
    fields = ["created_at", "sender", "text", "note", "execution"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:  # type: ignore[no-untyped-def]
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["public_id", "identity", "state", "process", "updated_at"]
    list_filter = ["state", "identity__channel"]
    search_fields = ["public_id", "identity__external_id", "identity__user__username"]
    readonly_fields = ["public_id", "identity", "thread", "state", "process", "parameters", "asking", "asked",
                       "pending_text", "expires_at", "last_execution", "created_at", "updated_at"]
    inlines = [MessageInline]

    def has_add_permission(self, request) -> bool:  # type: ignore[no-untyped-def]
        return False
