"""How fast the Jobs page's queries are with 100 000 finished jobs in the store.

Fills a real jobs.db through the store's own submit/claim/complete (so the FTS index and
sentences are exactly what the worker writes), with Zipf-distributed Chinese text (so common
characters match a large share of all sentences, as in real transcripts), then times the
queries one page view runs: the count plus the first page for several filters, a deep page,
and full-text searches from a rare word to the most common character.

    .venv/bin/python bench/jobs_page.py [--jobs 100000] [--db PATH] [--repeat 30]

`--db PATH` keeps the filled database and reuses it on the next run (filling 100 000 jobs
takes minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine.dashboard import jobs_page
from engine.jobs import Sentence
from engine.store import JobResult, NewJob, Store, open_store

# ~600 common characters, most frequent first (so index 0 is the commonest, like 的).
CHARS = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年"
    "过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心"
    "她本前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由"
    "问很最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位"
    "次度门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总"
    "何电数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治"
    "展马科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交"
    "规万取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快"
    "办议往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华"
    "城石级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎"
    "查轻易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽"
    "推势参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供"
    "效续施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止"
    "细愿千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰"
    "试股拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获"
)
NAMES = ["会议", "客服", "访谈", "讲座", "电话", "call", "meeting", "interview", "季度复盘"]


def zipf_text(rng: random.Random, weights: list[float], n_chars: int) -> str:
    return "".join(rng.choices(CHARS, weights=weights, k=n_chars))


def fill(store: Store, n_jobs: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(len(CHARS))]
    start = int(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)
    step = (90 * 86_400_000) // n_jobs  # spread over 90 days
    t0 = time.perf_counter()
    for i in range(n_jobs):
        now = start + i * step
        sha = f"{i:064x}"
        store.submit(
            NewJob(
                audio_sha256=sha,
                audio_path=f"audio/{sha[:2]}/{sha}",
                audio_bytes=1,
                original_name=f"{rng.choice(NAMES)}-{i}.wav",
                duration_ms=60_000,
                batch_id=f"b{i // 50}" if i % 3 == 0 else None,
            ),
            queue_max=10**9,
            max_attempts=3,
            now=now,
        )
        job = store.claim("bench", 30, now=now + 100)
        if i % 20 == 19:  # some failures, as in real life
            store.fail(job.id, "bench", job.attempts, "音频已损坏", "CorruptAudioError")
            continue
        sentences, t = [], 0
        for _ in range(rng.randint(3, 12)):
            text = zipf_text(rng, weights, rng.randint(8, 30)) + "。"
            sentences.append(Sentence(text, t, t + 4000))
            t += 4000
        store.complete(
            job.id,
            "bench",
            job.attempts,
            JobResult(
                text="".join(s.text for s in sentences),
                raw_text="",
                confidence=0.9,
                sentences=sentences,
                effective_hotwords=[],
                duration_ms=60_000,
                decode_ms=50,
                inference_ms=900,
                model_info={},
            ),
            now=now + 1100,
        )
        if (i + 1) % 10_000 == 0:
            rate = (i + 1) / (time.perf_counter() - t0)
            print(f"  filled {i + 1} jobs ({rate:.0f}/s)", file=sys.stderr)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm the page cache, as a page view after the first one would
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    return statistics.median(samples), samples[
        min(len(samples) - 1, round(0.95 * (len(samples) - 1)))
    ]


def page_view(store: Store, where, offset: int = 0) -> Callable[[], object]:
    """What browse() runs: the count for the pager, then one page of 50."""

    def run() -> object:
        store.count_jobs(where=where)
        return store.list_jobs(where=where, limit=50, offset=offset)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--db", type=Path, help="keep (and reuse) the filled database here")
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp(prefix="seaco-bench-")) / "jobs.db"
    store = open_store(db)
    existing = store.count_jobs()
    if existing < args.jobs:
        print(f"filling {db} with {args.jobs - existing} jobs…", file=sys.stderr)
        fill(store, args.jobs - existing, seed=existing)
    total = store.count_jobs()
    utc = dt.timezone.utc
    march = (dt.date(2026, 3, 1), dt.date(2026, 3, 7))
    cases = {
        "list: first page, no filter": page_view(store, jobs_page.job_filter()),
        "list: state = failed": page_view(store, jobs_page.job_filter(state="failed")),
        "list: one week": page_view(store, jobs_page.job_filter(days=march, tz=utc)),
        "list: name contains 会议": page_view(store, jobs_page.job_filter(name="会议")),
        "list: one batch": page_view(store, jobs_page.job_filter(batch_id="b100")),
        "list: page 1000 (offset 49 950)": page_view(store, jobs_page.job_filter(), 49_950),
        "search: rare word (兰试)": lambda: jobs_page.search(store, "兰试"),
        "search: two common words (的 是)": lambda: jobs_page.search(store, "的 是"),
        "search: commonest character (的)": lambda: jobs_page.search(store, "的"),
        "search: no match (火星)": lambda: jobs_page.search(store, "火星"),
    }
    print(f"\n{total} jobs in {db} ({store.database_bytes() / 1e6:.0f} MB)\n")
    print("| query | p50 ms | p95 ms |\n|---|---|---|")
    for label, fn in cases.items():
        p50, p95 = timed(fn, args.repeat)
        print(f"| {label} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
