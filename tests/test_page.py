"""The page at / in a real browser: Debian's Chromium driven by Selenium through the system
chromedriver (never a downloaded one), against real `qa serve` processes on 127.0.0.1 with
the real default model over the shipped corpus. Screenshots go to tmp_path.

Needs `apt-get install chromium chromium-driver` (.ci/run does it); skipped without them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest
from conftest import free_port
from test_server import CORPUS, build_shipped_index, clean_env, qa_command

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                       reason="needs Debian's chromium and chromium-driver"),
]
os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must never download a driver

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

KEY = "page-test-key-7c2e"
LAVROV = "When did Lavrov visit North Korea?"
HOSTILE_DOC = (
    "Note <script>window.__xss = 'doc-script'</script> sur le sommet de Vladivostok.\n"
    "Le sommet de Vladivostok a eu lieu en septembre 2023 <img src=x "
    "onerror=\"window.__xss='doc-img'\"> entre Kim Jong-un et Vladimir Poutine.\n"
)


@dataclass
class Server:
    url: str
    base: Path
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(base: Path, *, embedder: str, env: dict[str, str]) -> Server:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(base / f"serve-{port}.log", "wb")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        [*qa_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--corpus",
         "corpus", "--index", "index", "--embedder", embedder],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=base,
    )
    server = Server(url, base, process)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("qa serve exited:\n" + (base / f"serve-{port}.log").read_text())
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail("qa serve not ready")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped corpus, indexed once with the real default model."""
    return build_shipped_index(tmp_path_factory.mktemp("page"))


@pytest.fixture(scope="module")
def server(built: Path) -> Iterator[Server]:
    s = start_server(built, embedder="use-m3", env=clean_env())
    yield s
    s.stop()


@pytest.fixture(scope="module")
def keyed_server(built: Path) -> Iterator[Server]:
    s = start_server(built, embedder="use-m3", env=clean_env(QA_API_KEY=KEY))
    yield s
    s.stop()


def make_driver(profile: Path, *, language: str = "en-US", width: int = 1280,
                height: int = 900) -> WebDriver:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 f"--lang={language}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": language})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)),
                              options=options)
    driver.set_page_load_timeout(60)
    return driver


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[WebDriver]:
    driver = make_driver(tmp_path / "profile")
    yield driver
    driver.quit()


def wait(driver: WebDriver, condition: Callable[[WebDriver], Any], timeout: float = 60) -> Any:
    # The page re-renders its result: an element found a moment ago may be gone (stale).
    from selenium.common.exceptions import StaleElementReferenceException

    return WebDriverWait(driver, timeout,
                         ignored_exceptions=[StaleElementReferenceException]).until(condition)


def visible(driver: WebDriver, css: str, timeout: float = 60) -> WebElement:
    def find(d: WebDriver) -> WebElement | bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        return found[0] if found and found[0].is_displayed() else False
    result: WebElement = wait(driver, find, timeout)
    return result


def ask(driver: WebDriver, question: str) -> None:
    box = visible(driver, "#q")
    box.clear()
    box.send_keys(question, Keys.ENTER)  # the keyboard, as a user would


def wait_for_answer(driver: WebDriver, question: str) -> None:
    wait(driver, lambda d: d.find_elements(By.ID, "asked")
         and d.find_element(By.ID, "asked").text.endswith(question)
         and not d.find_element(By.ID, "ask-button").get_attribute("disabled"))


def shot(driver: WebDriver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path))
    assert path.stat().st_size > 5000
    # Kept for looking at after a run: QA_SCREENSHOTS=/some/dir copies them there.
    if os.environ.get("QA_SCREENSHOTS"):
        Path(os.environ["QA_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(os.environ["QA_SCREENSHOTS"]) / path.name)
    return path


def in_view(driver: WebDriver, element: WebElement, container: WebElement) -> bool:
    """The element lies inside the container's visible box, and inside the window."""
    return bool(driver.execute_script(
        """const [e, c] = arguments; const r = e.getBoundingClientRect();
        const b = c.getBoundingClientRect();
        return r.height > 0 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1
            && r.top >= 0 && r.bottom <= window.innerHeight;""",
        element, container))


def api_answer(server: Server, question: str, **extra: Any) -> dict[str, Any]:
    r = httpx.post(f"{server.url}/ask", json={"question": question, **extra}, timeout=60)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


# ---------------------------------------------------------------------------- asking


def test_ask_highlight_and_open_the_cited_document(server: Server, browser: WebDriver,
                                                   tmp_path: Path) -> None:
    expected = api_answer(server, LAVROV)
    span = expected["answer_span"]
    browser.get(server.url + "/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Ask the documents"
    assert browser.switch_to.active_element == browser.find_element(By.ID, "q")
    ask(browser, LAVROV)
    wait_for_answer(browser, LAVROV)
    shot(browser, tmp_path, "answer")

    sentence = browser.find_element(By.ID, "answer-sentence").text
    assert sentence == expected["answer"] and "18 octobre" in sentence
    assert urlsplit(browser.current_url).query == "q=" + quote(LAVROV, safe="").replace(
        "%20", "+")
    citations = browser.find_elements(By.CSS_SELECTOR, "#citations > li")
    assert len(citations) == len(expected["citations"])
    for li, c in zip(citations, expected["citations"], strict=True):
        passage = li.find_element(By.CSS_SELECTOR, ".passage")
        assert passage.get_attribute("textContent") == c["text"]
        # the passage's section (heading path), above it, when its document has headings
        shown = li.find_elements(By.CSS_SELECTOR, "p.section")
        assert [e.get_attribute("textContent") for e in shown] == ([c["section"]]
                                                                   if c["section"] else [])
    # the answer is highlighted with <mark> in the passage that holds it, and only there
    marks = browser.find_elements(By.CSS_SELECTOR, "#citations mark.answer")
    assert marks and all(m.get_attribute("textContent") == expected["answer"] for m in marks)
    holder = next(i for i, c in enumerate(expected["citations"])
                  if c["doc_id"] == span["doc_id"] and c["start"] <= span["start"]
                  and span["end"] <= c["end"])
    head = citations[holder].find_element(By.CSS_SELECTOR, "button.citation-head")
    title = httpx.get(f"{server.url}/documents/{span['doc_id']}").json()["title"]
    assert title in head.text

    # open the cited document: the whole text, cited range and answer marked and in view
    head.click()
    doc = visible(browser, "#document")
    text_box = browser.find_element(By.ID, "doc-text")
    full = httpx.get(f"{server.url}/documents/{span['doc_id']}").json()["text"]
    assert text_box.get_attribute("textContent") == full
    cited = browser.find_element(By.ID, "cited-range")
    assert cited.get_attribute("textContent") == expected["citations"][holder]["text"]
    answer = browser.find_element(By.ID, "doc-answer")
    assert answer.get_attribute("textContent") == full[span["start"]:span["end"]]
    wait(browser, lambda d: in_view(d, answer, text_box), timeout=10)
    assert browser.find_element(By.ID, "doc-title").text == title
    assert browser.switch_to.active_element == browser.find_element(By.ID, "doc-title")
    shot(browser, tmp_path, "document")
    # Escape closes it and gives the focus back to the citation
    browser.switch_to.active_element.send_keys(Keys.ESCAPE)
    wait(browser, lambda d: not doc.is_displayed())
    assert browser.switch_to.active_element == head


def test_keyboard_only_and_labels(server: Server, browser: WebDriver) -> None:
    browser.get(server.url + "/")
    unlabeled = browser.execute_script(
        """return [...document.querySelectorAll('input, select, textarea')]
          .filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length)
                       && !e.getAttribute('aria-label')).map(e => e.outerHTML);""")
    assert unlabeled == []
    ask(browser, LAVROV)
    wait_for_answer(browser, LAVROV)
    # Tab from the question reaches the first citation's button; Enter opens the document.
    browser.find_element(By.ID, "q").click()
    for _ in range(40):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if "citation-head" in (browser.switch_to.active_element.get_attribute("class") or ""):
            break
    focused = browser.switch_to.active_element
    assert "citation-head" in (focused.get_attribute("class") or "")
    outline = browser.execute_script(
        "return getComputedStyle(arguments[0]).outlineStyle + ' ' "
        "+ getComputedStyle(arguments[0]).outlineWidth", focused)
    assert outline.startswith("solid") and not outline.endswith(" 0px"), outline
    focused.send_keys(Keys.ENTER)
    visible(browser, "#document")


def test_abstention_is_honest(server: Server, browser: WebDriver, tmp_path: Path) -> None:
    question = "Who won the 2022 World Cup?"
    assert api_answer(server, question)["abstained"]
    browser.get(server.url + "/")
    ask(browser, question)
    wait_for_answer(browser, question)
    box = visible(browser, "#not-found")
    assert "Not found in these documents" in box.text
    assert not browser.find_elements(By.ID, "answer-sentence")
    assert not browser.find_elements(By.CSS_SELECTOR, "#results mark")
    heading = browser.find_element(By.ID, "citations-heading").text
    assert "do not answer" in heading
    items = browser.find_elements(By.CSS_SELECTOR, "#citations > li")
    assert items and all("not-answer" in (li.get_attribute("class") or "") for li in items)
    assert all("does not answer" in li.find_element(By.CSS_SELECTOR, ".badge").text
               for li in items)
    shot(browser, tmp_path, "abstention")


def test_deep_link_asks_on_load_and_history_follows(server: Server, browser: WebDriver) -> None:
    first = "Quand Kim Jong-un a-t-il rencontré le ministre russe des ressources naturelles ?"
    browser.get(f"{server.url}/?q={quote(first)}&k=3")
    wait_for_answer(browser, first)
    assert browser.find_element(By.ID, "q").get_attribute("value") == first
    assert browser.find_element(By.ID, "k").get_attribute("value") == "3"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#citations > li")) <= 3
    ask(browser, LAVROV)
    wait_for_answer(browser, LAVROV)
    assert "q=When+did+Lavrov" in browser.current_url and "k=3" in browser.current_url
    browser.back()
    wait_for_answer(browser, first)
    assert browser.find_element(By.ID, "q").get_attribute("value") == first


def test_filters_restrict_the_documents(server: Server, browser: WebDriver) -> None:
    docs = httpx.get(f"{server.url}/documents").json()
    only = docs[1]["doc_id"]
    browser.get(server.url + "/")
    browser.find_element(By.CSS_SELECTOR, "#filters summary").click()
    box = visible(browser, f"#doc-list input[value='{only}']")
    box.click()
    ask(browser, LAVROV)
    wait_for_answer(browser, LAVROV)
    assert f"doc={quote(only)}" in browser.current_url
    expected = api_answer(server, LAVROV, doc_ids=[only])
    items = browser.find_elements(By.CSS_SELECTOR, "#citations > li")
    assert len(items) == len(expected["citations"])
    assert all(c["doc_id"] == only for c in expected["citations"])


def test_french_interface_follows_the_browser(server: Server, tmp_path: Path) -> None:
    driver = make_driver(tmp_path / "fr", language="fr-FR")
    try:
        driver.get(server.url + "/")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Interroger les documents"
        assert driver.find_element(By.ID, "ask-button").text == "Demander"
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == "fr"
        ask(driver, "Qui a gagné la Coupe du monde 2022 ?")
        wait_for_answer(driver, "Qui a gagné la Coupe du monde 2022 ?")
        assert "Introuvable dans ces documents" in visible(driver, "#not-found").text
        shot(driver, tmp_path, "french-abstention")
    finally:
        driver.quit()


def test_phone_width(server: Server, tmp_path: Path) -> None:
    driver = make_driver(tmp_path / "phone", width=390, height=844)
    try:
        driver.get(server.url + "/")
        ask(driver, LAVROV)
        wait_for_answer(driver, LAVROV)
        driver.find_element(By.CSS_SELECTOR, "#citations button.citation-head").click()
        visible(driver, "#document")
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow}px of horizontal scrolling at phone width"
        shot(driver, tmp_path, "phone")
    finally:
        driver.quit()


# ---------------------------------------------------------------------------- API key


def test_the_key_is_asked_once_and_never_in_the_url(keyed_server: Server, browser: WebDriver,
                                                    tmp_path: Path) -> None:
    browser.get(keyed_server.url + "/")
    dialog = visible(browser, "#key-dialog")
    shot(browser, tmp_path, "key-prompt")
    browser.find_element(By.ID, "key-input").send_keys("wrong-key", Keys.ENTER)
    error = visible(browser, "#key-error")
    assert "refused" in error.text
    browser.find_element(By.ID, "key-input").send_keys(KEY, Keys.ENTER)
    wait(browser, lambda d: not dialog.is_displayed())
    ask(browser, LAVROV)
    wait_for_answer(browser, LAVROV)
    assert "18 octobre" in browser.find_element(By.ID, "answer-sentence").text
    assert browser.execute_script("return sessionStorage.getItem('qa-api-key')") == KEY
    assert KEY not in browser.current_url
    # a reload in the same tab does not ask again; a deep link works with the stored key
    browser.get(f"{keyed_server.url}/?q={quote(LAVROV)}")
    wait_for_answer(browser, LAVROV)
    assert not browser.find_element(By.ID, "key-dialog").is_displayed()
    history = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert all(KEY not in url for url in history)


# ---------------------------------------------------------------------------- hostile input


@pytest.fixture
def hostile_server(tmp_path: Path) -> Iterator[Server]:
    """The fake embedder over the corpus plus a document holding HTML (it stays text)."""
    base = tmp_path / "hostile"
    shutil.copytree(CORPUS, base / "corpus")
    (base / "corpus" / "zz_hostile.txt").write_text(HOSTILE_DOC, encoding="utf-8")
    s = start_server(base, embedder="hash", env=clean_env())
    yield s
    s.stop()


@pytest.mark.parametrize("question", [
    "<script>window.__xss = 'question-script'</script> Vladivostok ?",
    "\"><img src=x onerror=\"window.__xss='question-img'\"> sommet de Vladivostok",
])
def test_html_in_questions_and_documents_is_shown_as_text(
    hostile_server: Server, browser: WebDriver, tmp_path: Path, question: str
) -> None:
    browser.get(hostile_server.url + "/")
    ask(browser, question)
    wait_for_answer(browser, question)
    assert browser.find_element(By.ID, "asked").text.endswith(question)
    assert browser.execute_script("return window.__xss === undefined")
    results = browser.find_element(By.ID, "results")
    assert not results.find_elements(By.TAG_NAME, "img")
    assert not results.find_elements(By.TAG_NAME, "script")
    hostile = [li for li in browser.find_elements(By.CSS_SELECTOR, "#citations > li")
               if "<img src=x" in li.text or "<script>" in li.text]
    assert hostile, "the hostile document is cited, its markup visible as text"
    hostile[0].find_element(By.CSS_SELECTOR, "button.citation-head").click()
    text_box = visible(browser, "#doc-text")
    assert text_box.get_attribute("textContent") == HOSTILE_DOC
    assert not text_box.find_elements(By.TAG_NAME, "img")
    time.sleep(0.5)  # an onerror would have fired by now
    assert browser.execute_script("return window.__xss === undefined")
    shot(browser, tmp_path, "hostile")
    # no CSP violation either: nothing even tried to run inline
    logs = json.dumps(browser.get_log("browser"))
    assert "Content Security Policy" not in logs, logs


def test_an_error_is_shown_when_the_server_is_down(hostile_server: Server, browser: WebDriver,
                                                   tmp_path: Path) -> None:
    browser.get(hostile_server.url + "/")
    ask(browser, "Vladivostok ?")
    wait_for_answer(browser, "Vladivostok ?")
    hostile_server.stop()
    ask(browser, "Où a eu lieu le sommet ?")
    error = visible(browser, "#error", timeout=30)
    assert "cannot be reached" in error.text
    assert browser.find_element(By.ID, "ask-button").is_enabled()
    assert not browser.find_element(By.ID, "results").is_displayed()  # no stale answer under it
    shot(browser, tmp_path, "server-down")


def test_short_answer_and_page_are_shown_when_present(server: Server, browser: WebDriver,
                                                      tmp_path: Path) -> None:
    """Fields that the answers and parsers work add to the result (short_answer, page) are
    rendered when the JSON has them: the short answer above the sentence and marked inside
    it in the passage, the page next to the citation."""
    result = api_answer(server, LAVROV, k=2)
    span = result["answer_span"]
    start = span["start"] + result["answer"].index("18 octobre")
    result["short_answer"] = {"text": "18 octobre", "doc_id": span["doc_id"], "start": start,
                              "end": start + len("18 octobre"), "kind": "date",
                              "value": "2024-10-18"}
    for i, c in enumerate(result["citations"]):
        c["page"] = i + 3
    browser.get(server.url + "/")
    visible(browser, "#q")
    browser.execute_script("window.qaPage.renderResult(arguments[0])", result)
    assert visible(browser, "#short-answer").text == "18 octobre"
    shorts = browser.find_elements(By.CSS_SELECTOR, "#citations mark.answer mark.short")
    assert shorts and shorts[0].get_attribute("textContent") == "18 octobre"
    heads = browser.find_elements(By.CSS_SELECTOR, "#citations .citation-head")
    assert "p. 3" in heads[0].text and "p. 4" in heads[1].text
    assert "p. " in browser.find_element(By.CSS_SELECTOR, "#answer .source").text
    shot(browser, tmp_path, "short-answer")


def test_api_docs_render_offline(server: Server, browser: WebDriver, tmp_path: Path) -> None:
    """Swagger UI at /docs comes from the server itself: it renders in a browser that reaches
    nothing else, and every resource it loaded is same-origin."""
    browser.get(server.url + "/docs")
    title = visible(browser, ".swagger-ui .info .title", timeout=30)
    assert title.text.startswith("qa")
    visible(browser, ".swagger-ui .opblock-summary-path[data-path='/ask']")
    loaded = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(server.url) for url in loaded), loaded
    shot(browser, tmp_path, "docs")


def test_citations_opened_after_a_reindex_use_the_answer_generation(
    tmp_path: Path, browser: WebDriver
) -> None:
    """A document opened after one re-index still shows the text the answer's offsets index
    (its generation); after two re-indexes the page says to ask again (410)."""
    base = tmp_path / "swap"
    shutil.copytree(CORPUS, base / "corpus")
    s = start_server(base, embedder="hash", env=clean_env(QA_API_KEY=KEY))
    auth = {"Authorization": f"Bearer {KEY}"}
    try:
        browser.get(s.url + "/")
        browser.find_element(By.ID, "key-input").send_keys(KEY, Keys.ENTER)
        question = "Quand Sergueï Lavrov s’est-il rendu en Corée du Nord ?"
        ask(browser, question)
        wait_for_answer(browser, question)
        answer = browser.find_element(By.ID, "answer-sentence").text
        holder = browser.find_element(By.CSS_SELECTOR, "#citations li:has(mark.answer)")
        doc_id = httpx.post(f"{s.url}/ask", json={"question": question}, headers=auth,
                            timeout=60).json()["answer_span"]["doc_id"]
        path = base / "corpus" / doc_id
        path.write_text("Un long préambule ajouté décale tous les offsets du texte.\n\n"
                        + path.read_text(encoding="utf-8"), encoding="utf-8")
        assert httpx.post(f"{s.url}/index", headers=auth, timeout=60).status_code == 200
        holder.find_element(By.CSS_SELECTOR, "button.citation-head").click()
        mark = visible(browser, "#doc-answer")
        assert mark.get_attribute("textContent") == answer
        assert "préambule" not in browser.find_element(By.ID, "doc-text").text
        browser.find_element(By.ID, "doc-close").click()

        path.write_text(path.read_text(encoding="utf-8") + "\nUne autre modification.",
                        encoding="utf-8")
        assert httpx.post(f"{s.url}/index", headers=auth, timeout=60).status_code == 200
        holder.find_element(By.CSS_SELECTOR, "button.citation-head").click()
        error = visible(browser, "#error")
        assert "no longer kept" in error.text and "Ask the question again" in error.text
    finally:
        s.stop()
