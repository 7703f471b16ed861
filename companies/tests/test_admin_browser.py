"""The admin in a real browser: headless Chromium against uvicorn (DEBUG off, collected static files).

Uses Debian's chromium and chromedriver (CI apt-installs both); Selenium is given both
paths, so it never runs Selenium Manager or downloads a browser. Each step saves a
screenshot under test-artifacts/admin/.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.wait import WebDriverWait

from testing.servers import PROJECT_DIR

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
ARTIFACTS = PROJECT_DIR / "test-artifacts" / "admin"
PASSWORD = "correct-horse-battery-staple"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,900",
]
_missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        bool(_missing), reason=f"needs Debian's chromium and chromium-driver: {', '.join(_missing)} missing"
    ),
]

# --- fixtures ---------------------------------------------------------------------------


@pytest.fixture
def browser(tmp_path_factory) -> Iterator[WebDriver]:
    """Headless Chromium with a fresh profile."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shot(browser: WebDriver, request) -> Callable[[str], Path]:
    """shot(step) saves a PNG of the page as test-artifacts/admin/<test>-<n>-<step>.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = request.node.name.removeprefix("test_")
    counter = iter(range(1, 100))

    def save(step: str) -> Path:
        path = ARTIFACTS / f"{test}-{next(counter):02d}-{step}.png"
        assert browser.save_screenshot(str(path)), f"no screenshot saved at {path}"
        return path

    return save


@pytest.fixture
def superuser(transactional_db):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("admin", "admin@example.com", PASSWORD)


@pytest.fixture
def admin_browser(browser: WebDriver, live_url: str, superuser, shot) -> WebDriver:
    """A browser logged in to the admin as a superuser."""
    login(browser, live_url, superuser.username, PASSWORD)
    shot("logged-in")
    assert heading(browser) == "Site administration"
    return browser


# --- helpers ----------------------------------------------------------------------------


def wait(driver: WebDriver, timeout: float = 15, ignored_exceptions=None) -> WebDriverWait:
    return WebDriverWait(driver, timeout, ignored_exceptions=ignored_exceptions)


def submit(driver: WebDriver, button: WebElement) -> None:
    """Click a button that submits a form and wait for the next page to load."""
    page = driver.find_element(By.TAG_NAME, "html")
    button.click()
    # Asked mid-navigation, chromedriver may answer "Node with given id does not belong to the
    # document" instead of a stale element: ask again, until the old page is gone or time is up.
    wait(driver, ignored_exceptions=[WebDriverException]).until(expected_conditions.staleness_of(page))
    wait(driver).until(lambda d: d.execute_script("return document.readyState") == "complete")


def fill(driver: WebDriver, field_id: str, value: str) -> None:
    field = driver.find_element(By.ID, field_id)
    field.clear()
    field.send_keys(value)


def login(driver: WebDriver, live_url: str, username: str, password: str) -> None:
    driver.get(f"{live_url}/admin/login/?next=/admin/")
    fill(driver, "id_username", username)
    fill(driver, "id_password", password)
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#login-form input[type=submit]"))


def heading(driver: WebDriver) -> str:
    return driver.find_element(By.CSS_SELECTOR, "#content h1").text


def text_of(element: WebElement) -> str:
    """The element's text as written in the page (.text is after CSS text-transform)."""
    return element.get_attribute("textContent").strip()


def messages(driver: WebDriver, level: str = "success") -> list[str]:
    return [li.text for li in driver.find_elements(By.CSS_SELECTOR, f"ul.messagelist li.{level}")]


def changelist_row(driver: WebDriver, text: str) -> WebElement:
    rows = [row for row in driver.find_elements(By.CSS_SELECTOR, "#result_list tbody tr") if text in row.text]
    assert len(rows) == 1, f"expected one row with {text!r}, got {[row.text for row in rows]}"
    return rows[0]


# --- tests ------------------------------------------------------------------------------


def test_admin_is_styled(admin_browser: WebDriver, live_url: str, shot) -> None:
    """The admin's CSS is served (hashed names from the manifest) and applied, DEBUG off."""
    driver = admin_browser
    hrefs = [link.get_attribute("href") for link in driver.find_elements(By.CSS_SELECTOR, "link[rel=stylesheet]")]
    assert any("/static/admin/css/base." in href for href in hrefs), hrefs
    for href in hrefs:
        assert re.search(r"\.[0-9a-f]{12}\.css$", href), f"{href} is not a hashed (manifest) name"
        response = httpx.get(href, timeout=10)
        assert response.status_code == 200, href
        assert response.headers["content-type"].startswith("text/css"), href

    # Every stylesheet loaded in the page, and its rules apply.
    rule_counts = driver.execute_script("return Array.from(document.styleSheets, s => s.cssRules.length)")
    assert rule_counts and all(count > 0 for count in rule_counts), rule_counts
    header = driver.execute_script(
        "const s = getComputedStyle(document.getElementById('header'));"
        "return {display: s.display, background: s.backgroundColor, padding: s.paddingLeft};"
    )
    assert header["display"] == "flex", header
    assert header["background"] not in ("rgba(0, 0, 0, 0)", "transparent"), header
    assert header["padding"] == "40px", header
    shot("styled")


def test_add_company_with_folder_then_search(admin_browser: WebDriver, live_url: str, make_company, shot) -> None:
    from storage.models import StorageFolder

    driver = admin_browser
    make_company("Other Company")

    driver.get(f"{live_url}/admin/companies/company/add/")
    assert heading(driver) == "Add company"
    inline_titles = [text_of(h2) for h2 in driver.find_elements(By.CSS_SELECTOR, ".inline-group h2")]
    assert "Storage folders" in inline_titles, inline_titles
    fill(driver, "id_name", "Acme Browser")
    fill(driver, "id_contact_email", "ops@acme.example")
    fill(driver, "id_folders-0-name", "Portraits")
    fill(driver, "id_folders-0-path", "acme/portraits")
    Select(driver.find_element(By.ID, "id_folders-0-folder_type")).select_by_value("portraits")
    shot("add-form-filled")
    submit(driver, driver.find_element(By.NAME, "_save"))
    shot("saved")

    assert any("Acme Browser" in message and "added successfully" in message for message in messages(driver))
    row = changelist_row(driver, "Acme Browser")
    assert row.find_element(By.CSS_SELECTOR, ".field-slug").text == "acme-browser"
    assert row.find_element(By.CSS_SELECTOR, ".field-folder_count").text == "1"
    folder = StorageFolder.objects.get(company__name="Acme Browser")
    # Stored in the canonical form (API.md, Paths).
    assert (folder.name, folder.path, folder.folder_type) == ("Portraits", "/acme/portraits", "portraits")

    fill(driver, "searchbar", "acme")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#changelist-search input[type=submit]"))
    shot("searched")
    names = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, "#result_list tbody th.field-name")]
    assert names == ["Acme Browser"]
    assert "1 result" in driver.find_element(By.CSS_SELECTOR, "#changelist-search .small").text


def test_action_tests_storage_connection(admin_browser: WebDriver, live_url: str, tmp_path, shot) -> None:
    from storage.models import StorageConnection

    driver = admin_browser
    connection = StorageConnection.objects.create(name="Browser Disk", provider="local_disk", base_path=str(tmp_path))

    driver.get(f"{live_url}/admin/")
    submit(driver, driver.find_element(By.LINK_TEXT, "Storage connections"))
    assert heading(driver) == "Select storage connection to change"
    row = changelist_row(driver, "Browser Disk")
    row.find_element(By.CSS_SELECTOR, "input[name=_selected_action]").click()
    Select(driver.find_element(By.NAME, "action")).select_by_visible_text("Test selected storage connections")
    shot("action-selected")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#changelist-form button[name=index]"))
    shot("action-done")

    assert messages(driver) == [f"Browser Disk: {tmp_path} is a writable directory."]
    assert messages(driver, "error") == []
    assert changelist_row(driver, "Browser Disk").find_element(By.CSS_SELECTOR, ".field-test_status").text == "Success"
    connection.refresh_from_db()
    assert connection.test_status == "success"


def test_add_a_minio_connection_and_test_it(
    admin_browser: WebDriver, live_url: str, s3_server, s3_bucket: str, shot
) -> None:
    """A MinIO connection added in the admin, then tested against a real S3 endpoint (moto)."""
    from storage.models import StorageConnection

    driver = admin_browser
    driver.get(f"{live_url}/admin/storage/storageconnection/add/")
    assert heading(driver) == "Add storage connection"
    fill(driver, "id_name", "Browser S3")
    Select(driver.find_element(By.ID, "id_provider")).select_by_value("minio")
    fill(driver, "id_base_path", "/arv/checks")
    fill(driver, "id_credentials", json.dumps(s3_server.credentials(s3_bucket)))
    shot("minio-form-filled")
    submit(driver, driver.find_element(By.NAME, "_save"))
    shot("minio-saved")
    assert any("Browser S3" in message and "added successfully" in message for message in messages(driver))

    row = changelist_row(driver, "Browser S3")
    row.find_element(By.CSS_SELECTOR, "input[name=_selected_action]").click()
    Select(driver.find_element(By.NAME, "action")).select_by_visible_text("Test selected storage connections")
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#changelist-form button[name=index]"))
    shot("minio-tested")

    assert messages(driver) == [f"Browser S3: Bucket '{s3_bucket}' on {s3_server.endpoint} is writable."]
    assert messages(driver, "error") == []
    assert changelist_row(driver, "Browser S3").find_element(By.CSS_SELECTOR, ".field-test_status").text == "Success"
    assert StorageConnection.objects.get(name="Browser S3").test_status == "success"
    assert s3_server.keys(s3_bucket) == []


def test_connection_form_never_shows_credentials(admin_browser: WebDriver, live_url: str, shot) -> None:
    from storage.models import StorageConnection

    driver = admin_browser
    secret = "s3cr3t-never-shown"
    credentials = {"endpoint": "minio.example:9000", "access_key": "ak", "secret_key": secret, "bucket": "b"}
    connection = StorageConnection.objects.create(name="Browser MinIO", provider="minio", credentials=credentials)

    driver.get(f"{live_url}/admin/storage/storageconnection/{connection.pk}/change/")
    shot("change-form")
    assert heading(driver) == "Change storage connection"
    field = driver.find_element(By.ID, "id_credentials")
    assert field.get_attribute("value") == ""
    assert secret not in driver.page_source

    # Saving with the field left empty keeps the stored credentials.
    submit(driver, driver.find_element(By.NAME, "_save"))
    shot("saved")
    assert any("changed successfully" in message for message in messages(driver))
    connection.refresh_from_db()
    assert connection.decrypted_credentials() == credentials

    # New credentials replace the stored ones, and the form is empty again afterwards.
    driver.get(f"{live_url}/admin/storage/storageconnection/{connection.pk}/change/")
    replacement = {**credentials, "secret_key": "rotated-secret"}
    fill(driver, "id_credentials", json.dumps(replacement))
    submit(driver, driver.find_element(By.NAME, "_continue"))
    shot("replaced")
    assert any("changed successfully" in message for message in messages(driver))
    assert driver.find_element(By.ID, "id_credentials").get_attribute("value") == ""
    assert "rotated-secret" not in driver.page_source
    connection.refresh_from_db()
    assert connection.decrypted_credentials() == replacement


def test_logout(admin_browser: WebDriver, live_url: str, shot) -> None:
    driver = admin_browser
    submit(driver, driver.find_element(By.CSS_SELECTOR, "#logout-form button[type=submit]"))
    shot("logged-out")
    assert heading(driver) == "Logged out"
    assert driver.find_element(By.LINK_TEXT, "Log in again").is_displayed()

    driver.get(f"{live_url}/admin/")
    assert driver.find_elements(By.ID, "login-form"), "the admin still lets the logged-out browser in"


def test_non_staff_user_cannot_log_in(browser: WebDriver, live_url: str, transactional_db, shot) -> None:
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user("visitor", password=PASSWORD)

    login(browser, live_url, "visitor", PASSWORD)
    shot("refused")
    error = browser.find_element(By.CSS_SELECTOR, "#content .errornote").text
    assert "Please enter the correct username and password for a staff account" in error
    assert browser.find_elements(By.ID, "login-form")

    browser.get(f"{live_url}/admin/")
    assert browser.find_elements(By.ID, "login-form"), "a non-staff user got into the admin"
