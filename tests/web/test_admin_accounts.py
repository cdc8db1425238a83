"""The admin's own pages in a real browser: users (role, language, agent, disable, new password), API keys
(scopes, the key shown once), media uploads (progress, the server's refusal) and the audit log."""

from __future__ import annotations

import io
import re
import wave

import httpx
import pytest
from playwright.async_api import Page, expect

from hotline.db.repositories.accounts import AccountRepository
from hotline.errors import AuthenticationError

from .browser import ProblemLog
from .conftest import WebHotline
from .test_admin import add_user, row, sign_in


def wav_bytes(seconds: float = 0.5) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(b"\x00\x00" * int(8000 * seconds))
    return out.getvalue()


async def test_admin_creates_a_user_bound_to_an_agent_then_disables_it_and_sets_a_password(
    page: Page, hotline_web: WebHotline
) -> None:
    add_user(hotline_web, "ada", "admin")
    hotline_web.hotline.catalog.create("agents", {"number": "1001", "name": "Alice"})
    accounts = AccountRepository(hotline_web.hotline.engine)
    await sign_in(page, hotline_web, "ada", "/admin/users")

    await page.locator("#admin-new").click()
    await page.locator("#admin-field-username").fill("alice")
    await page.locator("#admin-field-display_name").fill("Alice Smith")
    await page.locator("#admin-field-role").select_option("agent")
    await page.locator("#admin-field-language").select_option("ru")
    await page.locator("#admin-field-agent").select_option("1001")
    await page.locator("#admin-field-password").fill("short")
    await page.locator("#admin-save").click()
    await expect(page.locator("#admin-error-password")).to_have_text("At least 10 characters.")
    await page.locator("#admin-field-password").fill("alice's long password")
    await page.locator("#admin-save").click()
    await expect(page).to_have_url(hotline_web.url("/admin/users"))
    await expect(row(page, "alice").locator('[data-field="role"]')).to_have_text("agent")
    await expect(row(page, "alice").locator('[data-field="agent"]')).to_have_text("1001")
    user = accounts.get_user("alice")
    assert (user.role, user.language, user.agent_number, user.enabled) == ("agent", "ru", "1001", True)

    await row(page, "alice").locator("a.admin-key").click()
    await expect(page.locator("#admin-field-username")).to_be_disabled()
    await page.locator("#admin-field-enabled").uncheck()
    await page.locator("#admin-field-password").fill("a brand new password")
    await page.locator("#admin-save").click()
    await expect(page.locator("#hotline-flash")).to_contain_text("Saved.")
    assert accounts.get_user("alice").enabled is False
    with pytest.raises(AuthenticationError):  # a disabled user cannot sign in, even with the right password
        await hotline_web.hotline.accounts.password_principal("alice", "a brand new password", address="127.0.0.1")

    # enabling again through the list's bulk action lets the new password in
    await page.locator("#admin-back").click()
    await row(page, "alice").locator("input.admin-select").check()
    await page.locator("#admin-bulk-enable").click()
    await expect(page.locator("#hotline-flash")).to_contain_text("Enabled 1 records.")
    await expect(row(page, "alice").locator('[data-field="enabled"]')).to_have_text("yes")
    principal = await hotline_web.hotline.accounts.password_principal(
        "alice", "a brand new password", address="127.0.0.1"
    )
    assert principal.agent_number == "1001"


async def test_api_key_is_shown_once_and_works_with_its_scopes(page: Page, hotline_web: WebHotline) -> None:
    add_user(hotline_web, "ada", "admin")
    await sign_in(page, hotline_web, "ada", "/admin/api-keys")
    await page.locator("#admin-new").click()
    await page.locator("#admin-field-name").fill("crm-sync")
    await page.locator("#admin-save").click()
    await expect(page.locator("#admin-error-scopes")).to_have_text("Required.")
    await page.locator('#admin-field-scopes [data-choice="config:read"]').check()
    await page.locator("#admin-field-expires_at").fill("2031-01-02T03:04")
    await page.locator("#admin-save").click()

    key_box = page.locator("#admin-once-key")
    await expect(key_box).to_have_value(re.compile(r"^hlk_"))
    await page.locator("#admin-once-copy-key").click()
    await expect(page.locator("#admin-once")).to_contain_text("Copied.")
    key = await key_box.input_value()
    async with httpx.AsyncClient(base_url=hotline_web.base_url) as client:
        headers = {"Authorization": f"Bearer {key}"}
        assert (await client.get("/api/v1/config/queues", headers=headers)).status_code == 200
        assert (await client.post("/api/v1/config/queues", json={"name": "x"}, headers=headers)).status_code == 403

    await page.locator("#admin-once-done").click()
    await expect(page).to_have_url(hotline_web.url("/admin/api-keys"))
    await expect(row(page, "crm-sync").locator('[data-field="scopes"]')).to_have_text("config:read")
    await expect(row(page, "crm-sync").locator('[data-field="expires_at"]')).to_contain_text("2031")
    (stored,) = AccountRepository(hotline_web.hotline.engine).list_api_keys()
    assert stored.expires_at is not None and stored.expires_at.year == 2031
    await expect(page.locator("#admin-once-key")).to_have_count(0)  # never shown again

    await row(page, "crm-sync").locator("button.admin-delete").click()
    await page.locator('[data-testid="ask-ok"]').click()
    await expect(page.locator("#admin-table tbody tr.admin-empty")).to_have_count(1)
    async with httpx.AsyncClient(base_url=hotline_web.base_url) as client:
        response = await client.get("/api/v1/config/queues", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401


async def test_media_uploads_show_progress_and_the_servers_refusal(
    page: Page, hotline_web: WebHotline, browser_problems: ProblemLog
) -> None:
    browser_problems.expect(r"422")  # the refused upload
    add_user(hotline_web, "ada", "admin")
    hotline_web.hotline.catalog.create("moh_classes", {"name": "calm"})
    await sign_in(page, hotline_web, "ada", "/admin/media")

    await page.locator("#admin-prompt-name").fill("welcome")
    await page.locator("#admin-prompt-file").set_input_files(
        {"name": "welcome.wav", "mimeType": "audio/wav", "buffer": wav_bytes()}
    )
    await page.locator("#admin-prompt-upload").click()
    await expect(page.locator("#admin-prompt-status")).to_have_text("Uploaded welcome.")
    await expect(page.locator("#admin-prompt-progress")).to_have_js_property("value", 100)
    await expect(page.locator('#admin-prompts tr[data-name="welcome"]')).to_contain_text("welcome.wav")

    await page.locator("#admin-moh-class").select_option("calm")
    await page.locator("#admin-moh-name").fill("song")
    await page.locator("#admin-moh-file").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"this is not audio at all"}
    )
    await page.locator("#admin-moh-upload").click()
    await expect(page.locator("#admin-moh-status")).to_contain_text("File: ")
    await expect(page.locator('#admin-moh-files tr[data-name="calm/song"]')).to_have_count(0)

    await page.locator("#admin-moh-file").set_input_files(
        {"name": "song.wav", "mimeType": "audio/wav", "buffer": wav_bytes(1.0)}
    )
    await page.locator("#admin-moh-name").fill("song")
    await page.locator("#admin-moh-upload").click()
    await expect(page.locator("#admin-moh-status")).to_have_text("Uploaded song.")
    await expect(page.locator('#admin-moh-files tr[data-name="calm/song"]')).to_be_visible()


async def test_audit_log_shows_admin_changes_filtered_by_resource_and_actor(
    page: Page, hotline_web: WebHotline
) -> None:
    add_user(hotline_web, "ada", "admin")
    await sign_in(page, hotline_web, "ada", "/admin/config/pause_reasons/new")
    await page.locator("#admin-field-name").fill("lunch")
    await page.locator("#admin-field-paid").check()
    await page.locator("#admin-save").click()
    await expect(row(page, "lunch")).to_be_visible()

    await page.goto(hotline_web.url("/admin/audit"))
    await page.locator("#admin-audit-resource").fill("pause_reasons")
    await page.locator("#admin-audit-actor").fill("user:ada")
    await page.locator("#admin-audit-apply").click()
    entries = page.locator("#admin-audit-table tbody tr")
    await expect(entries).to_have_count(1)
    await expect(entries.locator('[data-field="key"]')).to_have_text("lunch")
    await expect(entries.locator('[data-field="action"]')).to_have_text("created")
    await expect(page).to_have_url(re.compile(r"resource=pause_reasons&actor=user%3Aada$"))

    await page.locator("#admin-audit-actor").fill("user:nobody")
    await page.locator("#admin-audit-apply").click()
    await expect(page.locator("#admin-audit-table tbody tr.admin-empty")).to_have_count(1)
