"""The web admin in a real browser: the generic list and form (created, searched, edited, validated,
bulk-deleted), read-only access for a supervisor, and the Russian interface."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from hotline.db.repositories.accounts import AccountRepository

from .browser import ProblemLog
from .conftest import WebHotline

PASSWORD = "correct horse battery"


def add_user(web: WebHotline, username: str, role: str, *, language: str = "en") -> None:
    AccountRepository(web.hotline.engine).add_user(username, PASSWORD, role=role, language=language)


async def sign_in(page: Page, web: WebHotline, username: str, path: str) -> None:
    await page.goto(web.url(path))
    await page.locator("#login-username").fill(username)
    await page.locator("#login-password").fill(PASSWORD)
    await page.locator("#login-submit").click()
    await expect(page).to_have_url(re.compile(re.escape(web.url(path.split("?")[0]))))


def row(page: Page, key: str):  # type: ignore[no-untyped-def]
    return page.locator(f'#admin-table tr[data-key="{key}"]')


async def test_admin_manages_queues_through_the_generated_list_and_form(
    page: Page, hotline_web: WebHotline, browser_problems: ProblemLog
) -> None:
    browser_problems.expect(r"422")  # the server's refusal of a bad value is logged by the browser
    add_user(hotline_web, "ada", "admin")
    catalog = hotline_web.hotline.catalog
    for name in ("sales", "billing"):
        catalog.create("queues", {"name": name})
    await sign_in(page, hotline_web, "ada", "/admin/config/queues")

    # create through the form
    await page.locator("#admin-new").click()
    await expect(page).to_have_url(hotline_web.url("/admin/config/queues/new"))
    await page.locator("#admin-field-name").fill("support")
    await page.locator("#admin-field-strategy").select_option("rrmemory")
    await page.locator("#admin-field-timeout").fill("20")
    await page.locator("#admin-save").click()
    await expect(page).to_have_url(hotline_web.url("/admin/config/queues"))
    await expect(page.locator("#hotline-flash")).to_contain_text("Created support.")
    await expect(row(page, "support").locator('[data-field="strategy"]')).to_have_text(
        "rrmemory (round robin with memory)"
    )
    await expect(row(page, "support").locator('[data-field="timeout"]')).to_have_text("20")
    assert catalog.get("queues", "support")["strategy"] == "rrmemory"

    # sort by a column (the server sorts), descending on the second click
    keys = page.locator("#admin-table tbody tr")
    await page.locator('#admin-table [data-sort="timeout"]').click()
    await expect(page).to_have_url(re.compile(r"\?sort=timeout$"))
    await page.locator('#admin-table [data-sort="timeout"]').click()
    await expect(page).to_have_url(re.compile(r"\?sort=-timeout$"))
    await expect(keys.first).to_have_attribute("data-key", "support")

    # search
    await page.locator("#admin-search").fill("sup")
    await expect(page.locator("#admin-table tbody tr")).to_have_count(1)
    await expect(row(page, "support")).to_be_visible()
    await expect(page).to_have_url(re.compile(r"\?q=sup&sort=-timeout$"))  # a reload keeps the view
    await page.locator("#admin-search").fill("")
    await expect(page.locator("#admin-table tbody tr")).to_have_count(3)

    # edit one field
    await row(page, "support").locator("a.admin-key").click()
    await expect(page).to_have_url(hotline_web.url("/admin/config/queues/edit?key=support"))
    await expect(page.locator("#admin-field-name")).to_be_disabled()  # a key is never changed
    await page.locator("#admin-field-wrapuptime").fill("15")
    await page.locator("#admin-save").click()
    await expect(page.locator("#hotline-flash")).to_contain_text("Saved.")
    assert catalog.get("queues", "support")["wrapuptime"] == 15

    # a client-side hint, then the server's error next to the field it names
    await page.locator("#admin-field-timeout").fill("-5")
    await page.locator("#admin-save").click()
    await expect(page.locator("#admin-error-timeout")).to_have_text("Must be at least 0.")
    await page.locator("#admin-field-timeout").fill("20")
    await page.locator("#admin-field-joinempty").fill("sometimes")
    await page.locator("#admin-save").click()
    await expect(page.locator("#admin-error-joinempty")).to_contain_text("must be yes, no, strict, loose")
    await expect(page.locator("#admin-error-timeout")).to_be_empty()
    assert catalog.get("queues", "support")["joinempty"] == "yes"

    # bulk delete two, with the confirmation
    await page.locator("#admin-back").click()
    await row(page, "sales").locator("input.admin-select").check()
    await row(page, "billing").locator("input.admin-select").check()
    await expect(page.locator("#admin-selected-count")).to_have_text("2 selected")
    await page.locator("#admin-bulk-delete").click()
    await expect(page.locator('[data-testid="ask-dialog"]')).to_contain_text("billing, sales")
    await page.locator('[data-testid="ask-ok"]').click()
    await expect(page.locator("#hotline-flash")).to_contain_text("Deleted 2 records.")
    await expect(page.locator("#admin-table tbody tr")).to_have_count(1)
    await expect(row(page, "support")).to_be_visible()
    assert [q["name"] for q in catalog.list("queues")[0]] == ["support"]


async def test_bulk_set_a_field_changes_every_selected_row_or_none(
    page: Page, hotline_web: WebHotline, browser_problems: ProblemLog
) -> None:
    browser_problems.expect(r"422")
    add_user(hotline_web, "ada", "admin")
    catalog = hotline_web.hotline.catalog
    for name in ("billing", "sales", "support"):
        catalog.create("queues", {"name": name, "strategy": "ringall"})
    await sign_in(page, hotline_web, "ada", "/admin/config/queues")

    await expect(page.locator("#admin-bulk-set-open")).to_be_disabled()  # nothing selected yet
    await row(page, "sales").locator("input.admin-select").check()
    await row(page, "billing").locator("input.admin-select").check()
    await page.locator("#admin-bulk-set-open").click()
    await page.locator("#admin-bulk-field").select_option("strategy")
    await page.locator("#admin-field-strategy").select_option("leastrecent")
    await page.locator("#admin-bulk-apply").click()
    await expect(page.locator("#hotline-flash")).to_contain_text("set on 2 records.")
    await expect(page.locator("#admin-bulk-set")).to_be_hidden()
    await expect(row(page, "sales").locator('[data-field="strategy"]')).to_contain_text("leastrecent")
    strategies = {q["name"]: q["strategy"] for q in catalog.list("queues")[0]}
    assert strategies == {"billing": "leastrecent", "sales": "leastrecent", "support": "ringall"}

    # one value the server refuses: the error names the field, and no row changed
    await page.locator("#admin-select-all").check()
    await page.locator("#admin-bulk-set-open").click()
    await page.locator("#admin-bulk-field").select_option("joinempty")
    await page.locator("#admin-field-joinempty").fill("sometimes")
    await page.locator("#admin-bulk-apply").click()
    await expect(page.locator("#admin-error-joinempty")).to_contain_text("must be yes, no, strict, loose")
    assert {q["joinempty"] for q in catalog.list("queues")[0]} == {"yes"}
    await page.locator("#admin-bulk-cancel").click()
    await expect(page.locator("#admin-bulk-set")).to_be_hidden()

    # the audit log keeps who changed what on which rows
    entries, _ = AccountRepository(hotline_web.hotline.engine).audit_entries(resource="queues", actor="user:ada")
    bulk = [(e.resource_key, e.after) for e in entries if e.action == "bulk_update"]
    assert bulk == [("billing,sales", {"strategy": "leastrecent"})]


async def test_a_supervisor_sees_the_configuration_but_cannot_change_it(
    page: Page, hotline_web: WebHotline, browser_problems: ProblemLog
) -> None:
    browser_problems.expect(r"403")  # the refused write and the 403 pages are logged by the browser
    add_user(hotline_web, "sue", "supervisor")
    hotline_web.hotline.catalog.create("queues", {"name": "support"})
    await sign_in(page, hotline_web, "sue", "/admin/config/queues")

    await expect(row(page, "support")).to_be_visible()
    await expect(page.locator("#admin-read-only")).to_be_visible()
    for absent in ("#admin-new", "#admin-bulk-delete", "input.admin-select", "button.admin-delete"):
        await expect(page.locator(absent)).to_have_count(0)

    await row(page, "support").locator("a.admin-edit").click()
    await expect(page.locator("#admin-field-timeout")).to_have_value("15")
    await expect(page.locator("#admin-field-timeout")).to_be_disabled()
    await expect(page.locator("#admin-save")).to_have_count(0)
    await expect(page.locator("#admin-delete")).to_have_count(0)

    # the REST API refuses the write even when the page is bypassed
    status = await page.evaluate(
        "Hotline.api('POST', '/api/v1/config/queues', {name: 'x'}).then(() => 200, (e) => e.status)"
    )
    assert status == 403
    for path in ("/admin/config/queues/new", "/admin/users", "/admin/api-keys", "/admin/audit"):
        response = await page.goto(hotline_web.url(path))
        assert response is not None and response.status == 403, path
    await expect(page.locator('[data-admin-nav="users"]')).to_have_count(0)


async def test_switching_to_russian_shows_russian_labels(
    page: Page, hotline_web: WebHotline, browser_problems: ProblemLog
) -> None:
    browser_problems.expect(r"422")
    add_user(hotline_web, "ada", "admin")
    hotline_web.hotline.catalog.create("queues", {"name": "support"})
    await sign_in(page, hotline_web, "ada", "/admin/config/queues")
    await expect(page.locator("#admin-title")).to_have_text("Queues")

    await page.locator("#language-switch").select_option("ru")
    await expect(page.locator("#admin-title")).to_have_text("Очереди")
    await expect(page.locator('.admin-side [data-admin-nav="agents"]')).to_have_text("Агенты")
    await expect(page.locator('#admin-table [data-sort="strategy"]')).to_have_text("Стратегия")
    await expect(page.locator("#admin-new")).to_have_text("Создать")
    await expect(page.locator("#admin-page-info")).to_have_text("1\u20131 из 1")  # en dash

    await page.locator("#admin-new").click()
    await expect(page.locator("#admin-title")).to_have_text("Новый объект: очередь")
    await expect(page.locator('label[for="admin-field-timeout"]')).to_have_text("Время вызова, с")  # noqa: RUF001 (Russian)
    await expect(page.locator('[data-field="timeout"] .admin-hint')).to_have_text(
        "сколько секунд звонит телефон агента"
    )
    await expect(page.locator("#admin-field-recording option:checked")).to_have_text("никогда")
    await page.locator("#admin-save").click()
    await expect(page.locator("#admin-error-name")).to_have_text("Обязательное поле.")
    # the server's refusal comes back in the page's language too (values kept as typed)
    await page.locator("#admin-field-name").fill("sales")
    await page.locator("#admin-field-joinempty").fill("sometimes")
    await page.locator("#admin-save").click()
    await expect(page.locator("#admin-error-joinempty")).to_contain_text(
        "должно быть: yes, no, strict, loose или список через запятую из: paused, penalty"
    )


async def test_a_generated_phone_password_is_shown_once_and_never_read_back(
    page: Page, hotline_web: WebHotline
) -> None:
    add_user(hotline_web, "ada", "admin")
    await sign_in(page, hotline_web, "ada", "/admin/config/phones/new")
    await expect(page.locator("#admin-field-password")).to_have_attribute("type", "password")
    await page.locator("#admin-field-name").fill("2001")
    await page.locator("#admin-save").click()  # no password given: Hotline generates one

    shown = page.locator("#admin-once-password")
    await expect(shown).to_have_value(re.compile(r"^\S{8,128}$"))
    password = await shown.input_value()
    phone = hotline_web.hotline.catalog.get("phones", "2001")
    assert phone["has_password"] is True and "password" not in phone

    await page.locator("#admin-once-done").click()
    await row(page, "2001").locator("a.admin-key").click()
    await expect(page.locator("#admin-field-password")).to_have_value("")
    await expect(page.locator('[data-field="password"] .admin-secret-state')).to_have_text("set")
    assert password not in await page.content()


async def test_long_lists_are_paged(page: Page, hotline_web: WebHotline) -> None:
    add_user(hotline_web, "ada", "admin")
    for day in range(1, 31):
        hotline_web.hotline.catalog.create("holidays", {"day": f"2030-01-{day:02d}", "name": f"day {day}"})
    await sign_in(page, hotline_web, "ada", "/admin/config/holidays")

    await expect(page.locator("#admin-page-info")).to_have_text("1\u201325 of 30")  # en dash
    await expect(page.locator("#admin-prev")).to_be_disabled()
    await page.locator("#admin-next").click()
    await expect(page.locator("#admin-page-info")).to_have_text("26\u201330 of 30")
    await expect(page.locator("#admin-table tbody tr")).to_have_count(5)
    await expect(page.locator("#admin-table tbody tr").last).to_have_attribute("data-key", "2030-01-30")
    await expect(page.locator("#admin-next")).to_be_disabled()


async def test_bad_admin_addresses_answer_with_an_error_page(
    page: Page, hotline_web: WebHotline, browser_problems: ProblemLog
) -> None:
    browser_problems.expect(r"40[49]|422")
    add_user(hotline_web, "ada", "admin")
    await sign_in(page, hotline_web, "ada", "/admin")
    await expect(page.locator("[data-admin-card=queues]")).to_be_visible()

    response = await page.goto(hotline_web.url("/admin/config/no_such_thing"))
    assert response is not None and response.status == 404
    await expect(page.locator('[data-testid="error-detail"]')).to_contain_text("no_such_thing")
    response = await page.goto(hotline_web.url("/admin/config/queues/edit"))
    assert response is not None and response.status == 422
    response = await page.goto(hotline_web.url("/admin/config/queues/edit?key=missing"))
    assert response is not None and response.status == 200  # the frame; the record is looked up by the script
    await expect(page.locator("#hotline-flash")).to_contain_text("queue 'missing' does not exist")
    await expect(page.locator("#admin-save")).to_have_count(0)


async def test_every_resource_has_a_list_and_a_form(page: Page, hotline_web: WebHotline) -> None:
    """The generic UI copes with every field type of every resource (references, lists of choices, dates,
    JSON objects, secrets, composite keys) without a browser error."""
    add_user(hotline_web, "ada", "admin")
    await sign_in(page, hotline_web, "ada", "/admin")
    for described in hotline_web.hotline.catalog.resources():
        name = described["name"]
        await page.goto(hotline_web.url(f"/admin/config/{name}"))
        await expect(page.locator("#admin-table tbody tr")).to_have_count(1)  # "nothing here yet"
        await page.goto(hotline_web.url(f"/admin/config/{name}/new"))
        await expect(page.locator("#admin-save")).to_be_visible()
        writable = [f for f in described["fields"] if not f["read_only"]]
        await expect(page.locator("#admin-form .admin-field")).to_have_count(len(writable))


async def test_composite_keys_references_and_destination_suggestions(page: Page, hotline_web: WebHotline) -> None:
    add_user(hotline_web, "ada", "admin")
    catalog = hotline_web.hotline.catalog
    catalog.create("queues", {"name": "support"})
    catalog.create("agents", {"number": "1001", "name": "Alice"})
    await sign_in(page, hotline_web, "ada", "/admin/config/agent_queues/new")

    await page.locator("#admin-field-agent").select_option("1001")
    await page.locator("#admin-field-queue").select_option("support")
    await page.locator("#admin-field-penalty").fill("3")
    await page.locator("#admin-save").click()
    await row(page, "1001:support").locator("a.admin-key").click()
    await expect(page).to_have_url(hotline_web.url("/admin/config/agent_queues/edit?key=1001%3Asupport"))
    await page.locator("#admin-field-penalty").fill("7")
    await page.locator("#admin-save").click()
    await expect(page.locator("#hotline-flash")).to_contain_text("Saved.")
    assert catalog.get("agent_queues", "1001:support")["penalty"] == 7

    await page.goto(hotline_web.url("/admin/config/did_routes/new"))
    await page.locator("#admin-field-did").fill("5000")
    await page.locator("#admin-field-dest_type").select_option("queue")
    await expect(page.locator('#admin-field-dest_value-options option[value="support"]')).to_have_count(1)
    await page.locator("#admin-field-dest_type").select_option("agent")
    await expect(page.locator('#admin-field-dest_value-options option[value="1001"]')).to_have_count(1)
    await page.locator("#admin-field-dest_value").fill("1001")
    await page.locator("#admin-save").click()
    await expect(row(page, "5000").locator('[data-field="dest_value"]')).to_have_text("1001")
