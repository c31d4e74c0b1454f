"""Browser tests: the admin in headless Chromium (the session's `browser`) against
pytest-django's live server.

Each test gets `admin_browser`: that browser with no cookies (nobody logged in) and the few
steps the tests share: log in through the admin's login form, follow a link or a submit
button to the next page, read the admin's messages, save a screenshot. The window is
1280 px wide, the narrowest desktop window the admin is laid out for.

Screenshots go to `screenshot_dir`, kept after the run for people to look at.
"""

import os
from pathlib import Path

import pytest
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

# The longest a page may take to appear: a ceiling for a slow machine, not a speed test.
WAIT_SECONDS = 20
REPOSITORY = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _replaced(page: WebElement):
    """Selenium's staleness_of, also when Chromium, in the middle of replacing the document,
    answers that the old node "does not belong to the document" instead of "stale"."""
    def condition(driver) -> bool:
        try:
            page.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in (exc.msg or ""):
                return True
            raise
        return False
    return condition


class AdminBrowser:
    def __init__(self, driver: WebDriver, base_url: str) -> None:
        self.driver, self.base_url = driver, base_url

    def wait(self, condition):
        return WebDriverWait(self.driver, WAIT_SECONDS).until(condition)

    def open(self, path: str) -> None:
        """Load a page of the live server (get() returns once the page has loaded)."""
        self.driver.get(f"{self.base_url}{path}")

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def follow(self, element: WebElement) -> None:
        """Click a link or a submit button and wait until the page it leads to has loaded."""
        page = self.find("html")
        element.click()
        self.wait(_replaced(page))
        self.wait(lambda driver: driver.execute_script("return document.readyState")
                  == "complete")

    def log_in(self, user, password: str = "pw") -> None:
        """Log in through the admin's login form (UserFactory's password is "pw")."""
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})  # whoever was in
        self.open("/admin/login/")
        self.find("#id_username").send_keys(user.get_username())
        self.find("#id_password").send_keys(password)
        self.follow(self.find('#login-form [type="submit"]'))
        refusals = [note.text for note in self.find_all(".errornote")]
        assert self.find_all("#user-tools"), f"login of {user} failed: {refusals}"

    def screenshot(self, path: Path) -> None:
        """Save the whole page as PNG: the window grows to the page's height for the shot."""
        size = self.driver.get_window_size()
        width, height = size["width"], size["height"]
        page_height, viewport_height = self.driver.execute_script(
            "return [document.documentElement.scrollHeight, window.innerHeight]")
        self.driver.set_window_size(width, max(height, page_height + height - viewport_height))
        try:
            assert self.driver.save_screenshot(str(path)), f"no screenshot saved to {path}"
        finally:
            self.driver.set_window_size(width, height)
        assert Path(path).read_bytes().startswith(PNG_SIGNATURE), f"{path} is not a PNG"

    def messages(self, level: str) -> list[str]:
        """The texts of the admin's messages of one level ("success", "error", ...)."""
        return [item.text for item in self.find_all(f"ul.messagelist li.{level}")]


@pytest.fixture
def admin_browser(browser, live_server) -> AdminBrowser:
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})
    return AdminBrowser(browser, live_server.url)


@pytest.fixture
def narrow(admin_browser):
    """`admin_browser` 1280 px wide, the narrowest desktop window the admin is laid out for,
    for a test whose assertions are about that width: the session's window opens at it
    (tests/conftest.py), this keeps it so whatever an earlier test did to the window."""
    size = admin_browser.driver.get_window_size()
    admin_browser.driver.set_window_size(1280, size["height"])
    yield admin_browser
    admin_browser.driver.set_window_size(size["width"], size["height"])


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    """Where the browser tests save their screenshots: test-output/screenshots/ at the
    repository root (ignored by git), or the directory named by $SCREENSHOT_DIR. Kept after
    the run, unlike tmp_path, so that a person can look at the pages as a reviewer sees them."""
    directory = Path(os.environ.get("SCREENSHOT_DIR")
                     or REPOSITORY / "test-output" / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)
    return directory
