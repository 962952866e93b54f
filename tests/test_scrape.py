"""The scrape stage against replayed Instagram, under instaloader's real HTTP code.

A local HTTPS proxy on 127.0.0.1 answers every request instaloader makes (hashtag info, GraphQL
pages, a carousel's post query, CDN images) with the shapes in tests/fixtures/instagram/. requests
reaches it through ``HTTPS_PROXY`` and trusts it through ``REQUESTS_CA_BUNDLE``: nothing in
instaloader or in the scraper is replaced, and the subprocess tests run the real CLI. For a
network that cannot be reached, ``HTTPS_PROXY`` names a proxy that really cannot be connected to.
"""

import base64
import copy
import dataclasses
import fcntl
import http.cookies
import http.server
import io
import json
import lzma
import os
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path

import instaloader
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import compose_config
from omegaconf import OmegaConf
from PIL import Image

from data_pipeline.catalog import Catalog, CatalogPost
from data_pipeline.raw import read_posts
from data_pipeline.scrape.command import make_loader, run
from data_pipeline.scrape.rate import WaitBudget

FIXTURES = Path(__file__).parent / "fixtures" / "instagram"
TAG_QUERY = "9b498c08113f1e09617a1703c22b2f32"  # Hashtag.get_posts_resumable
LOGIN_QUERY = "d6f4427fbe92d846298cf93df0b937d3"  # InstaloaderContext.test_login
POST_QUERY = "27128499623469141"  # Post._obtain_metadata
CDN_HOST = "scontent.cdninstagram.com"
SESSION_ID = "sess-4242"
T0 = 1709294400  # 2024-03-01 12:00 UTC; posts are older by their minute
TOO_MANY = {"message": "Please wait a few minutes before you try again.", "status": "fail"}
CAPTION = "{name}: a red star and a blue moon over the sea, like Miró painted them #joanmiro"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


PAGE = fixture("hashtag_media_page.json")
TEMPLATES = {
    edge["node"]["__typename"]: edge["node"]
    for edge in PAGE["data"]["hashtag"]["edge_hashtag_to_media"]["edges"]
}


# The replayed Instagram.


@dataclass
class Request:
    host: str
    method: str
    path: str
    params: dict
    session: str | None


@dataclass
class Fault:
    """Answer ``times`` matching requests with ``status`` and ``body``; or, with ``hold``, keep
    the request waiting until ``hold`` is set (``held`` says one arrived)."""

    match: Callable[[Request], bool]
    status: int = 500
    body: object = None
    times: float = 1
    hold: threading.Event | None = None
    held: threading.Event = field(default_factory=threading.Event)


class Instagram:
    """Hashtags as pages of post nodes, their images, and the one session it accepts."""

    def __init__(self):
        self.pages: dict[str, list[list[dict]]] = {}
        self.carousels: dict[str, dict] = {}  # shortcode → the post query's media item
        self.images: dict[str, bytes] = {}  # CDN path → JPEG
        self.requests: list[Request] = []
        self.faults: list[Fault] = []
        self.unreachable: set[str] = set()  # hosts the proxy cannot reach: CONNECT gets a 502
        self.lock = threading.Lock()

    def answer(self, request: Request) -> tuple[int, str, bytes]:
        with self.lock:
            self.requests.append(request)
            fault = next((f for f in self.faults if f.times > 0 and f.match(request)), None)
            if fault is not None:
                fault.times -= 1
        if fault is not None:
            if fault.hold is not None:
                fault.held.set()
                fault.hold.wait(60)
            return _json(fault.status, fault.body)
        if request.host == CDN_HOST:
            image = self.images.get(request.path)
            return (200, "image/jpeg", image) if image else (404, "text/html", b"Not Found")
        if request.session != SESSION_ID:
            if request.params.get("query_hash") == LOGIN_QUERY:
                return _json(200, {"data": {"user": None}, "status": "ok"})
            return _json(403, fixture("login_required.json"))
        return self._api(request)

    def _api(self, request: Request) -> tuple[int, str, bytes]:
        params = request.params
        variables = json.loads(params.get("variables", "{}"))
        if request.path == "/api/v1/tags/web_info/":
            if params["tag_name"] not in self.pages:
                return _json(404, {"message": "Page not found", "status": "fail"})
            info = fixture("tags_web_info.json")
            info["data"]["name"] = params["tag_name"]
            return _json(200, info)
        if params.get("query_hash") == LOGIN_QUERY:
            return _json(200, {"data": {"user": {"username": "tester"}}, "status": "ok"})
        if params.get("query_hash") == TAG_QUERY:
            return _json(200, self._page(variables["tag_name"], page_index(request)))
        if params.get("doc_id") == POST_QUERY:
            media = self.carousels[variables["shortcode"]]
            answer = fixture("media_web_info.json")
            answer["data"]["xdt_api__v1__media__shortcode__web_info"]["items"] = [media]
            return _json(200, answer)
        return _json(404, {"message": "unknown endpoint", "status": "fail"})

    def _page(self, tag: str, index: int) -> dict:
        pages = self.pages[tag]
        answer = copy.deepcopy(PAGE)
        answer["data"]["hashtag"]["name"] = tag
        more = index + 1 < len(pages)
        answer["data"]["hashtag"]["edge_hashtag_to_media"] = {
            "count": sum(map(len, pages)),
            "page_info": {
                "has_next_page": more,
                "end_cursor": cursor(tag, index + 1) if more else None,
            },
            "edges": [{"node": copy.deepcopy(node)} for node in pages[index]],
        }
        return answer

    # what a test asks about the traffic

    def image_requests(self) -> Counter:
        return Counter(r.path.rsplit("/", 1)[1] for r in self.requests if r.host == CDN_HOST)

    def page_requests(self, tag: str) -> list[int]:
        return [page_index(r) for r in self.requests if _is_page(r) and _tag(r) == tag]


def cursor(tag: str, index: int) -> str:
    return base64.urlsafe_b64encode(f"{tag}:{index}".encode()).decode()


def page_index(request: Request) -> int:
    after = json.loads(request.params["variables"]).get("after")
    return 0 if after is None else int(base64.urlsafe_b64decode(after).decode().split(":")[1])


def _is_page(request: Request) -> bool:
    return request.params.get("query_hash") == TAG_QUERY


def _tag(request: Request) -> str:
    return json.loads(request.params["variables"])["tag_name"]


def page_of(tag: str, index: int) -> Callable[[Request], bool]:
    return lambda r: _is_page(r) and _tag(r) == tag and page_index(r) == index


def image_of(name: str) -> Callable[[Request], bool]:
    return lambda r: r.host == CDN_HOST and r.path.endswith(f"/{name}_n.jpg")


def _json(status: int, body: object) -> tuple[int, str, bytes]:
    return status, "application/json; charset=utf-8", json.dumps(body).encode()


def jpeg(name: str) -> bytes:
    """A real JPEG of Instagram-like size, its pixels drawn from ``name``: each post's differs."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    pixels = rng.integers(0, 256, (160, 200, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def image_url(world: Instagram, name: str) -> str:
    path = f"/v/t51.29350-15/{name}_n.jpg"
    world.images[path] = jpeg(name)
    return f"https://{CDN_HOST}{path}?stp=dst-jpg_e35&_nc_ht={CDN_HOST}&oe=65E8A1F2"


def add_post(world: Instagram, name: str, minute: float, kind: str = "GraphImage", owner=None):
    """A listing node shaped like the recorded one of ``kind``; shortcode ``name``."""
    node = copy.deepcopy(TEMPLATES[kind])
    node.update(
        shortcode=name,
        id=str(3312254809338170000 + len(world.images)),
        taken_at_timestamp=int(T0 - minute * 60),
        edge_media_to_caption={"edges": [{"node": {"text": CAPTION.format(name=name)}}]},
        display_url=image_url(world, name),
    )
    if owner:
        node["owner"] = {"id": node["owner"]["id"], "username": owner}
    if kind == "GraphVideo":  # would be fetched if videos were downloaded
        node["video_url"] = f"https://{CDN_HOST}/o1/v/t16/{name}.mp4"
    if kind == "GraphSidecar":  # children only come from the post's own query, as on Instagram
        media = copy.deepcopy(fixture("media_web_info.json")["data"])
        media = media["xdt_api__v1__media__shortcode__web_info"]["items"][0]
        media.update(code=name, pk=node["id"], taken_at=node["taken_at_timestamp"])
        media["caption"]["text"] = CAPTION.format(name=name)
        children = media["carousel_media"]
        for index, child in enumerate(children, start=1):
            child["image_versions2"]["candidates"][0]["url"] = image_url(world, f"{name}-{index}")
        media["image_versions2"] = copy.deepcopy(children[0]["image_versions2"])
        world.carousels[name] = media
    return node


def standard_world() -> Instagram:
    """#joanmiro: 3 pages (an image with its owner's name, a video, a 3-image carousel, two
    posts of the same second); #miro: 2 pages, sharing SHARED with #joanmiro."""
    world = Instagram()
    post = lambda *args, **kwargs: add_post(world, *args, **kwargs)  # noqa: E731
    shared = post("SHARED", 9)
    world.pages["joanmiro"] = [
        [
            post("A1", 1, owner="fundaciomiro"),
            post("A2", 2),
            post("V1", 3, "GraphVideo"),
            post("A3", 4),
        ],
        [post("S1", 5, "GraphSidecar"), post("A4", 6), post("SAME1", 7), post("SAME2", 7)],
        [post("A5", 8), shared, post("A6", 10)],
    ]
    world.pages["miro"] = [[post("M1", 0), shared], [post("M2", 11)]]
    return world


JOANMIRO = {"A1", "A2", "V1", "A3", "S1", "A4", "SAME1", "SAME2", "A5", "SHARED", "A6"}
MIRO = {"M1", "SHARED", "M2"}
IMAGES = [
    *["A1", "A2", "V1", "A3", "S1-1", "S1-2", "S1-3", "A4", "SAME1", "SAME2", "A5", "SHARED"],
    *["A6", "M1", "M2"],
]


class ReplayHandler(http.server.BaseHTTPRequestHandler):
    """An HTTPS proxy that is the server: after CONNECT it speaks TLS as the host asked for."""

    protocol_version = "HTTP/1.1"
    world: Instagram
    tls: ssl.SSLContext
    host = ""

    def do_CONNECT(self):
        self.host = self.path.rsplit(":", 1)[0]
        if self.host in self.world.unreachable:
            self.send_response(502, "Bad Gateway")
            self.end_headers()
            self.close_connection = True
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.connection = self.tls.wrap_socket(self.connection, server_side=True)
        self.rfile = self.connection.makefile("rb")
        self.wfile = self.connection.makefile("wb")
        self.close_connection = False

    def do_GET(self):
        self._answer({})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
        self._answer(urllib.parse.parse_qs(body))

    def _answer(self, form: dict) -> None:
        url = urllib.parse.urlsplit(self.path)
        params = {k: v[-1] for k, v in {**urllib.parse.parse_qs(url.query), **form}.items()}
        request = Request(self.host, self.command, url.path, params, _session(self.headers))
        status, content_type, body = self.world.answer(request)
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client was killed while we held its request
            self.close_connection = True

    def log_message(self, *args):
        pass


def _session(headers) -> str | None:
    """The session id a request carries: a cookie (web API) or a bearer token (iPhone API)."""
    cookie = http.cookies.SimpleCookie(headers.get("Cookie", ""))
    if "sessionid" in cookie and cookie["sessionid"].value:
        return cookie["sessionid"].value
    bearer = headers.get("Authorization", "")
    if bearer.startswith("Bearer IGT:2:"):
        return json.loads(base64.b64decode(bearer.removeprefix("Bearer IGT:2:")))["sessionid"]
    return None


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client killed mid-request (the SIGKILL test) is no error of the replay


@contextmanager
def replaying(world: Instagram):
    """Serve ``world``; while inside, requests in this process and its children reach it."""
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(FIXTURES / "server.pem", FIXTURES / "server.key")
    handler = type("Handler", (ReplayHandler,), {"world": world, "tls": tls})
    server = QuietServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.MonkeyPatch.context() as env:
            for name in ("HTTP_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
                env.delenv(name, raising=False)
            env.setenv("NO_PROXY", "")
            env.setenv("HTTPS_PROXY", f"http://127.0.0.1:{server.server_port}")
            env.setenv("REQUESTS_CA_BUNDLE", str(FIXTURES / "ca.pem"))
            yield world
    finally:
        for fault in world.faults:
            if fault.hold is not None:
                fault.hold.set()
        server.shutdown()
        server.server_close()


# Running the scraper.


@pytest.fixture(scope="module")
def session_file(tmp_path_factory) -> Path:
    """A session file written by instaloader itself, as `instaloader -l tester` leaves it."""
    path = tmp_path_factory.mktemp("instaloader") / "session-tester"
    loader = instaloader.Instaloader(quiet=True)
    cookies = {"sessionid": SESSION_ID, "csrftoken": "csrf", "ds_user_id": "4242", "mid": "m"}
    loader.load_session("tester", cookies)
    loader.save_session_to_file(str(path))
    return path


def options(out: Path, session_file: Path | None, *overrides: str) -> list[str]:
    login = ["login.user=tester", f"login.session_file={session_file}"] if session_file else []
    return [
        f"out={out}",
        "hashtags=[joanmiro]",
        *login,
        "loader.sleep=false",  # instaloader's polite random pause
        "progress=false",
        "rate_limit.time_scale=0.0001",  # an 11-minute 429 pause takes 0.07 s
        "rate_limit.backoff=1",
        *overrides,
    ]


def scrape(out: Path, session_file: Path | None, *overrides: str) -> tuple[int, str]:
    """``python -m data_pipeline.scrape`` in this process: exit code, stdout + stderr."""
    cfg = compose_config("scrape", options(out, session_file, *overrides), out.parent)
    output = io.StringIO()
    with redirect_stdout(output), redirect_stderr(output):
        code = run(cfg)
    return code, output.getvalue()


def scrape_cli(cwd: Path, out: Path, session_file: Path, *overrides: str) -> subprocess.Popen:
    command = [
        sys.executable,
        "-m",
        "data_pipeline.scrape",
        *options(out, session_file, *overrides),
    ]
    return subprocess.Popen(
        command,
        cwd=cwd,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def catalog_rows(out: Path) -> dict[str, CatalogPost]:
    with Catalog.open(out, read_only=True) as catalog:
        return {post.shortcode: post for post in catalog.posts()}


def assert_complete(out: Path, world: Instagram, shortcodes: set[str]) -> dict[str, CatalogPost]:
    """Every post recorded once and downloaded, with its files present and its own image."""
    rows = catalog_rows(out)
    assert set(rows) == shortcodes
    with sqlite3.connect(out / "catalog.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM posts").fetchone()[0] == len(shortcodes)
    for post in rows.values():
        assert post.status == "downloaded", post
        assert post.image_files
        for index, name in enumerate(post.image_files, start=1):
            path = out / name
            served = post.shortcode if len(post.image_files) == 1 else f"{post.shortcode}-{index}"
            assert path.read_bytes() == jpeg(served), (post.shortcode, name)
    return rows


# One scrape of both hashtags, looked at from several sides.


@dataclass
class Scraped:
    out: Path
    world: Instagram
    code: int
    output: str


@pytest.fixture(scope="module")
def scraped(tmp_path_factory, session_file) -> Scraped:
    out = tmp_path_factory.mktemp("scraped") / "raw"
    with replaying(standard_world()) as world:
        code, output = scrape(out, session_file, "hashtags=[joanmiro,'#Miro']")
    return Scraped(out, world, code, output)


def test_three_pages_of_a_hashtag_land_in_the_catalog(scraped):
    assert scraped.code == 0, scraped.output
    assert scraped.world.page_requests("joanmiro") == [0, 1, 2]
    rows = assert_complete(scraped.out, scraped.world, JOANMIRO | MIRO)
    assert rows["A1"].owner == "fundaciomiro"  # the listing names the owner
    assert rows["A2"].owner is None  # it only gives the owner's id: no extra request for a name
    assert rows["A2"].date_utc == "2024-03-01T11:58:00+00:00"
    assert rows["A2"].caption == CAPTION.format(name="A2")
    with Catalog.open(scraped.out) as catalog:
        cursors = [catalog.load_cursor(tag) for tag in ("joanmiro", "miro")]
    assert [(c.done, c.posts_seen) for c in cursors] == [(True, 11), (True, 3)]
    assert isinstance(cursors[0].frozen, instaloader.FrozenNodeIterator)
    assert "downloaded 13 new posts" in scraped.output


def test_each_image_is_fetched_once_and_no_video_ever(scraped):
    assert scraped.world.image_requests() == Counter(f"{name}_n.jpg" for name in IMAGES)
    assert not list(scraped.out.rglob("*.mp4"))


def test_a_post_under_two_hashtags_is_recorded_once_with_both(scraped):
    rows = catalog_rows(scraped.out)
    assert rows["SHARED"].hashtags == ("joanmiro", "miro")
    assert rows["M1"].hashtags == ("miro",)
    assert [Path(name).parts[0] for name in rows["SHARED"].image_files] == ["#joanmiro"]
    assert not list((scraped.out / "#miro").glob("2024-03-01_11-51-00_UTC*"))


def test_a_video_keeps_its_thumbnail_only(scraped):
    video = catalog_rows(scraped.out)["V1"]
    assert video.is_video is True
    assert video.image_files == ("#joanmiro/2024-03-01_11-57-00_UTC.jpg",)


def test_a_carousel_keeps_every_image_by_default(scraped):
    carousel = catalog_rows(scraped.out)["S1"]
    stem = "#joanmiro/2024-03-01_11-55-00_UTC"
    assert carousel.image_files == tuple(f"{stem}_{i}.jpg" for i in (1, 2, 3))
    assert carousel.owner == "marta.palma"  # from the post query instaloader made for the children


def test_posts_of_the_same_second_do_not_overwrite_each_other(scraped):
    rows = catalog_rows(scraped.out)
    assert rows["SAME1"].image_files == ("#joanmiro/2024-03-01_11-53-00_UTC.jpg",)
    assert rows["SAME2"].image_files == ("#joanmiro/SAME2/2024-03-01_11-53-00_UTC.jpg",)


def test_the_folder_is_read_by_data_pipeline_raw(scraped):
    posts, _ = read_posts(scraped.out)
    by_id = {post.id: post for post in posts}
    rows = catalog_rows(scraped.out)
    assert len(posts) == len(by_id) and set(by_id) == set(rows)
    for shortcode, row in rows.items():
        assert by_id[shortcode].caption == row.caption
        images = [path.relative_to(scraped.out).as_posix() for path in by_id[shortcode].images]
        assert images == list(row.image_files)
    assert by_id["A1"].owner == "fundaciomiro"
    assert by_id["A2"].owner.startswith("id:")  # an id is enough to cap prolific users


def test_saved_metadata_is_instaloaders(scraped):
    path = next((scraped.out / "#joanmiro").glob("2024-03-01_11-59-00_UTC.json.xz"))
    with lzma.open(path, "rt") as file:
        structure = json.load(file)
    assert structure["instaloader"]["node_type"] == "Post"
    assert structure["node"]["shortcode"] == "A1"


# Carousels, failures, rate limits, login.


def small_world() -> Instagram:
    world = Instagram()
    world.pages["joanmiro"] = [
        [add_post(world, "S1", 1, "GraphSidecar"), add_post(world, "A1", 2)],
        [add_post(world, "A2", 3)],
    ]
    return world


def test_carousel_first_keeps_only_the_first_image(tmp_path, session_file):
    with replaying(small_world()) as world:
        code, output = scrape(tmp_path / "raw", session_file, "carousel=first")
    assert code == 0, output
    assert catalog_rows(tmp_path / "raw")["S1"].image_files == (
        "#joanmiro/2024-03-01_11-59-00_UTC_1.jpg",
    )
    assert world.image_requests() == Counter(["S1-1_n.jpg", "A1_n.jpg", "A2_n.jpg"])


def test_a_strangers_leftover_image_is_not_kept(tmp_path, session_file):
    """An interrupted attempt may leave an image that no recorded post owns; instaloader would
    keep any file already there, so the scraper clears it first."""
    out = tmp_path / "raw"
    (out / "#joanmiro").mkdir(parents=True)
    (out / "#joanmiro" / "2024-03-01_11-58-00_UTC.jpg").write_bytes(jpeg("someone else"))
    with replaying(small_world()) as world:
        code, output = scrape(out, session_file)
    assert code == 0, output
    assert_complete(out, world, {"S1", "A1", "A2"})


def test_an_unknown_hashtag_is_reported_and_the_others_are_walked(tmp_path, session_file):
    with replaying(small_world()) as world:
        code, output = scrape(tmp_path / "raw", session_file, "hashtags=[nosuchtag,joanmiro]")
    assert code == 1, output
    assert "#nosuchtag: not found" in output
    assert_complete(tmp_path / "raw", world, {"S1", "A1", "A2"})


def test_a_second_scrape_into_the_same_folder_is_refused(tmp_path, session_file):
    out = tmp_path / "raw"
    out.mkdir()
    with open(out / ".scrape.lock", "w") as lock, replaying(small_world()) as world:
        fcntl.flock(lock, fcntl.LOCK_EX)
        code, output = scrape(out, session_file)
    assert code == 1 and "another scrape is writing into" in output
    assert world.requests == []


def test_a_post_whose_image_is_gone_is_recorded_as_failed(tmp_path, session_file):
    with replaying(small_world()) as world:
        world.faults.append(Fault(image_of("A1"), status=404, body={}, times=float("inf")))
        code, output = scrape(tmp_path / "raw", session_file)
    assert code == 0, output
    rows = catalog_rows(tmp_path / "raw")
    assert rows["A1"].status == "failed" and "404" in rows["A1"].error
    assert rows["A1"].image_files == ()
    assert rows["A2"].status == "downloaded"
    with Catalog.open(tmp_path / "raw") as catalog:
        assert [post.shortcode for post in catalog.downloaded()] == ["A2", "S1"]
    assert "1 failed" in output


def test_a_429_waits_and_continues(tmp_path, session_file, caplog):
    """A rate limit is waited out through the budget, never taken for a network that is down:
    with no network retries at all, the 429s still end in a wait and a complete walk."""
    caplog.set_level("WARNING")
    with replaying(standard_world()) as world:
        world.faults.append(Fault(page_of("joanmiro", 1), status=429, body=TOO_MANY, times=2))
        code, output = scrape(tmp_path / "raw", session_file, "network.retries=0")
    assert code == 0, output
    assert world.page_requests("joanmiro") == [0, 1, 1, 1, 2]
    assert_complete(tmp_path / "raw", world, JOANMIRO)
    waits = [r.getMessage() for r in caplog.records if "waiting" in r.getMessage()]
    assert waits and "HTTP 429" in waits[0], waits
    assert not any("cannot reach" in r.getMessage() for r in caplog.records)


def test_max_wait_stops_cleanly_and_the_rerun_finishes(tmp_path, session_file):
    out = tmp_path / "raw"
    with replaying(standard_world()) as world:
        world.faults.append(Fault(page_of("joanmiro", 1), 429, TOO_MANY, times=float("inf")))
        code, output = scrape(out, session_file, "rate_limit.max_wait=1000")
        assert code == 3, output
        assert "max_wait" in output and "Rerun the same command" in output
        assert set(catalog_rows(out)) == {"A1", "A2", "V1", "A3"}
        world.faults.clear()
        code, output = scrape(out, session_file, "rate_limit.max_wait=1000")
    assert code == 0, output
    assert_complete(out, world, JOANMIRO)
    assert max(world.image_requests().values()) == 1


def test_an_exception_mid_walk_loses_nothing_and_the_rerun_resumes(tmp_path, session_file):
    out = tmp_path / "raw"
    broken_page = {"data": {"hashtag": None}, "status": "ok"}  # instaloader fails to parse it
    with replaying(standard_world()) as world:
        world.faults.append(Fault(page_of("joanmiro", 2), status=200, body=broken_page))
        code, output = scrape(out, session_file)
        assert code == 1 and "Rerun the same command" in output, output
        assert set(catalog_rows(out)) == JOANMIRO - {"A5", "SHARED", "A6"}
        code, output = scrape(out, session_file)
    assert code == 0, output
    assert_complete(out, world, JOANMIRO)
    assert max(world.image_requests().values()) == 1
    assert world.page_requests("joanmiro") == [0, 1, 2, 0, 2]  # resumed: page 2, not 1 again


def test_login_required_mid_walk_says_how_to_make_a_session(tmp_path, session_file):
    out = tmp_path / "raw"
    with replaying(standard_world()) as world:
        login_required = fixture("login_required.json")
        world.faults.append(Fault(page_of("joanmiro", 1), 403, login_required, times=float("inf")))
        code, output = scrape(out, session_file)
    assert code == 2, output
    assert "login_required" in output
    assert "instaloader -l tester" in output and "login.session_file=" in output
    assert set(catalog_rows(out)) == {"A1", "A2", "V1", "A3"}  # what came before is kept


def test_anonymous_403_says_how_to_log_in(tmp_path):
    with replaying(standard_world()) as world:
        code, output = scrape(tmp_path / "raw", None, "login.anonymous=true")
    assert code == 2, output
    assert "instaloader -l NAME" in output and "login.user=NAME" in output
    assert world.requests and all(r.session is None for r in world.requests)


def test_a_missing_session_file_says_how_to_make_one(tmp_path):
    missing = tmp_path / "nowhere" / "session-tester"
    with replaying(standard_world()) as world:
        code, output = scrape(tmp_path / "raw", missing)
    assert code == 2
    assert f"no Instagram session for tester at {missing}" in output
    assert "`instaloader -l tester`" in output and "login.session_file=PATH" in output
    assert world.requests == []


def test_an_expired_session_is_caught_before_the_walk(tmp_path):
    expired = tmp_path / "session-tester"
    loader = instaloader.Instaloader(quiet=True)
    loader.load_session("tester", {"sessionid": "expired", "csrftoken": "csrf", "ds_user_id": "1"})
    loader.save_session_to_file(str(expired))
    with replaying(standard_world()) as world:
        code, output = scrape(tmp_path / "raw", expired)
    assert code == 2 and "no longer accepts the session" in output, output
    assert all(r.params.get("query_hash") == LOGIN_QUERY for r in world.requests)


# The real CLI, killed and restarted, then the build stage on what it wrote.


def test_sigkill_mid_run_then_rerun_completes_and_build_reads_it(tmp_path, session_file):
    out = tmp_path / "raw"
    with replaying(standard_world()) as world:
        hold = Fault(image_of("A4"), status=200, hold=threading.Event())
        world.faults.append(hold)
        first = scrape_cli(tmp_path, out, session_file, "hashtags=[joanmiro,miro]")
        assert hold.held.wait(60), first.communicate()
        first.send_signal(signal.SIGKILL)
        first.communicate()
        assert first.returncode == -signal.SIGKILL
        assert set(catalog_rows(out)) == {"A1", "A2", "V1", "A3", "S1"}  # committed one by one
        second = scrape_cli(
            tmp_path,
            out,
            session_file,
            "hashtags=[joanmiro,miro]",
            "progress=true",
            "max_posts=1000",
        )
        _, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    assert_complete(out, world, JOANMIRO | MIRO)
    expected = Counter(f"{name}_n.jpg" for name in IMAGES)
    expected["A4_n.jpg"] += 1  # the one image in flight when the process died
    assert world.image_requests() == expected
    assert "13/1000" in stderr and "post/s" in stderr  # the progress bar, against max_posts

    dataset = tmp_path / "dataset"
    build_cli = [sys.executable, "-m", "data_pipeline.build", f"raw={out}", f"out={dataset}"]
    build = subprocess.run(
        build_cli,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr
    manifest = pq.read_table(dataset / "manifest.parquet").to_pylist()
    assert {row["id"] for row in manifest} == JOANMIRO | MIRO


# No login, no network: the CLI stops within seconds and says what to do.


def run_cli(cwd: Path, arguments: list[str], env: dict[str, str]) -> tuple[int, str, float]:
    """``python -m data_pipeline.scrape ARGUMENTS``: exit code, stdout + stderr, seconds it took.
    A run still going after 60 s fails the test (``subprocess.TimeoutExpired``)."""
    command = [sys.executable, "-m", "data_pipeline.scrape", *arguments]
    start = time.monotonic()
    done = subprocess.run(
        command,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - start


def through_proxy(proxy: str) -> dict[str, str]:
    """Our environment, with every HTTPS request going through ``proxy`` and nothing else."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith(("_proxy", "_bundle"))}
    return {**env, "HTTPS_PROXY": proxy, "NO_PROXY": ""}


@contextmanager
def dead_proxy(how: str):
    """The URL of an HTTPS proxy that really cannot be reached, in the way ``how`` says.

    ``refused``: a local port nobody listens on. ``dns``: a name in RFC 2606's ``.invalid``, which
    never resolves. ``timeout``: a local port whose accept queue is full, so connecting hangs.
    """
    if how == "dns":
        yield "http://proxy.invalid:3128"
        return
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        port = server.getsockname()[1]
        if how == "refused":
            server.close()
            yield f"http://127.0.0.1:{port}"
            return
        server.listen(0)
        queued = [socket.socket() for _ in range(3)]
        for client in queued:
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", port))
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            for client in queued:
                client.close()


def test_without_a_login_the_cli_stops_at_once_with_the_login_steps(tmp_path):
    """The new user's first command: no login.user and no session file (an empty HOME). It must
    not try Instagram anonymously (hashtags need a login): exit 2, the steps, no request."""
    home = tmp_path / "home"
    home.mkdir()
    out = tmp_path / "raw"
    with replaying(standard_world()) as world:
        code, output, seconds = run_cli(
            tmp_path,
            ["hashtags=[joanmiro]", "max_posts=5", f"out={out}"],
            {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")},
        )
    assert code == 2, output
    assert seconds < 30, seconds
    assert "no login.user" in output
    assert "instaloader -l NAME" in output and "login.user=NAME" in output
    assert str(home / ".config" / "instaloader" / "session-NAME") in output
    assert "login.anonymous=true" in output
    assert world.requests == [] and not out.exists()


@pytest.mark.parametrize(
    ("how", "overrides", "host", "doing"),
    [
        ("refused", [], "www.instagram.com", "checking the login"),
        ("dns", ["login.check=false"], "i.instagram.com", "opening #joanmiro"),
        (
            "timeout",
            ["login.check=false", "network.connect_timeout=0.5", "network.retries=1"],
            "i.instagram.com",
            "opening #joanmiro",
        ),
    ],
)
def test_an_unreachable_network_stops_soon_and_the_same_command_resumes(
    tmp_path, session_file, how, overrides, host, doing
):
    """Instagram cannot be reached (the proxy refuses, does not resolve, or never answers the
    connection): a few quick tries, then exit 4 naming the host and the command that resumes;
    no rate-limit waiting, and the catalog as it was. The same command, online, then finishes."""
    out = tmp_path / "raw"
    arguments = options(out, session_file, "network.backoff=0.5", *overrides)
    with replaying(standard_world()) as world:
        code, output = scrape(out, session_file, "max_posts=4")
        assert code == 0, output
    before = catalog_rows(out)
    assert set(before) == {"A1", "A2", "V1", "A3"}

    with dead_proxy(how) as proxy:
        code, output, seconds = run_cli(tmp_path, arguments, through_proxy(proxy))
    assert code == 4, output
    assert seconds < 60, seconds
    assert f"stopped: cannot reach {host} through the proxy {proxy}" in output
    assert f"while {doing}" in output
    assert "Rerun the same command to continue: python -m data_pipeline.scrape" in output
    assert f"out={out}" in output.rsplit("Rerun the same command", 1)[1]
    assert "max_wait" not in output and "waiting" not in output  # no rate-limit budget spent
    assert catalog_rows(out) == before
    with Catalog.open(out, read_only=True) as catalog:
        assert catalog.load_cursor("joanmiro").posts_seen == 4

    with replaying(world):
        code, output, _ = run_cli(tmp_path, arguments, dict(os.environ))
    assert code == 0, output
    assert_complete(out, world, JOANMIRO)
    assert "#joanmiro: resuming after" in output
    assert "downloaded 7 new posts (0 failed, 1 already known" in output  # only the one it froze at
    assert max(world.image_requests().values()) == 1


def test_an_image_host_that_cannot_be_reached_stops_without_failing_posts(tmp_path, session_file):
    """The CDN drops off mid-walk (the proxy answers CONNECT with 502): the post in flight is
    not recorded as failed, the run stops (exit 4), and the rerun fetches each image once."""
    out = tmp_path / "raw"
    dead = ("network.retries=1", "network.backoff=0")
    with replaying(standard_world()) as world:
        code, output = scrape(out, session_file, "max_posts=2")
        assert code == 0, output
        world.unreachable.add(CDN_HOST)
        code, output = scrape(out, session_file, *dead)
        assert code == 4, output
        assert f"cannot reach {CDN_HOST} through the proxy http://127.0.0.1:" in output
        assert "while downloading post V1" in output and "Rerun the same command" in output
        rows = catalog_rows(out)
        assert set(rows) == {"A1", "A2"} and {r.status for r in rows.values()} == {"downloaded"}
        world.unreachable.clear()
        code, output = scrape(out, session_file, *dead)
    assert code == 0, output
    assert_complete(out, world, JOANMIRO)
    assert max(world.image_requests().values()) == 1


# The catalog and the config on their own.


def test_catalog_schema_wal_and_transactions(tmp_path):
    with Catalog.open(tmp_path) as catalog:
        post = CatalogPost(
            "abc", ("miro",), None, None, "hi", ("#miro/x.jpg",), False, "downloaded"
        )
        catalog.upsert_post(post)
        assert catalog.add_hashtag("abc", "joanmiro") is True
        assert catalog.add_hashtag("abc", "joanmiro") is False
        catalog.upsert_post(post)  # seen again under #miro: the hashtags it had stay
        assert catalog.get("abc").hashtags == ("miro", "joanmiro")
        with pytest.raises(RuntimeError), catalog.transaction():
            catalog.upsert_post(CatalogPost("def", ("miro",), None, None, None, (), None, "failed"))
            catalog.upsert_post(dataclasses.replace(post, status="failed", error="boom"))
            raise RuntimeError
        assert catalog.get("def") is None and catalog.get("abc").status == "downloaded"
        assert catalog.references("#miro/x.jpg") == "abc"
    with Catalog.open(tmp_path, read_only=True) as reader:
        assert [post.shortcode for post in reader.downloaded()] == ["abc"]
        with pytest.raises(sqlite3.OperationalError):
            reader.upsert_post(post)
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = {
            t: [r[1] for r in db.execute(f"PRAGMA table_info({t})")] for t in ("posts", "cursors")
        }
    assert columns == {
        "posts": [
            *["shortcode", "hashtags", "owner", "date_utc", "caption", "image_files", "is_video"],
            *["status", "error", "updated_at"],
        ],
        "cursors": ["hashtag", "frozen", "posts_seen", "done", "updated_at"],
    }


def test_catalog_round_trips_a_frozen_iterator(tmp_path):
    frozen = instaloader.FrozenNodeIterator(
        query_hash=TAG_QUERY,
        query_variables={"tag_name": "miro"},
        query_referer="https://www.instagram.com/explore/tags/miro/",
        context_username="tester",
        total_index=7,
        best_before=1.8e9,
        remaining_data={"edges": [], "page_info": {"has_next_page": True, "end_cursor": "x"}},
        first_node={"shortcode": "abc"},
        doc_id=None,
    )
    with Catalog.open(tmp_path) as catalog:
        catalog.save_cursor("miro", frozen, posts_seen=8)
        cursor = catalog.load_cursor("miro")
    with sqlite3.connect(tmp_path / "catalog.sqlite") as db:
        stored = json.loads(db.execute("SELECT frozen FROM cursors").fetchone()[0])
    assert cursor.frozen == frozen and cursor.posts_seen == 8 and cursor.done is False
    assert stored["instaloader"]["node_type"] == "FrozenNodeIterator"


def test_config_builds_instaloader_and_holds_no_password(tmp_path):
    cfg = compose_config("scrape", ["out=x", "login.user=someone"], tmp_path)
    loader = make_loader(cfg, "1", WaitBudget(cfg.rate_limit.max_wait))
    assert (loader.download_videos, loader.download_video_thumbnails) == (False, True)
    assert loader.save_metadata and loader.compress_json and loader.slide_end == 0
    assert loader.context.request_timeout == (10, 300.0)  # (connect, read): a dead link fails soon
    assert "passw" not in OmegaConf.to_yaml(cfg).lower()  # no key could ever carry one
