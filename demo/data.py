"""Synthetic but realistic demo data for the built-in recipes (pure: numpy and pandas only).

`demo_posts` and `demo_leads` are deterministic for a seed: the same seed gives the same
frame, value for value. Column names are exactly the recipes' features and targets
(core.ml.recipes.engagement, .lead_conversion, .engagement_anomaly) and the
category values lie within the categories the recipes declare (tests check both). Column
dtypes are what the recipes declare: int64 counts, float64, bool flags, strings.

Posts
    Clients are agencies managing many social accounts. Each account has a platform, a
    follower count drawn from a lognormal with a wide spread (a few accounts are hundreds
    of times larger than the median one: heavy tail), a latent "quality" (how engaging its
    audience is, otherwise unobserved) and a usual posting rate. Per post:

        expected likes = followers x base rate(platform) x exp(effects)

    with effects from media type, hour (midday and evening peaks), weekday (weekends help
    consumer platforms and hurt LinkedIn), caption length (best around 150 characters),
    hashtags (a few help, many hurt), mentions, links (hurt reach), sentiment, posting
    rate (posting a lot dilutes each post), account size (larger accounts engage a smaller
    share of followers) and the account's quality. `avg_engagement_30d` is the account's
    mean likes + comments per post over the last 30 days: it reveals the latent quality,
    as it would in real data. Likes get lognormal noise (sigma 0.25) and Poisson counts;
    comments follow likes through a platform comment ratio, rise with mentions and with
    negative sentiment (arguments), and get much more noise: lognormal sigma 0.6 plus an
    unobserved x2.5 for the fifth of captions that ask the audience a question. Comments
    are harder to predict than likes, as in real data.

    About 1 % of posts are planted anomalies (`planted_anomaly` is True), all on the
    smaller half of the accounts: viral spikes (likes and comments x 5-10), dead posts
    (x 0.02-0.08) and bought likes (likes x 5-15, comments unchanged). The column is ground
    truth for demos and tests, not a feature.

    Clients: `BIG_CLIENT` has about 40 % of the rows (enough for per-client models),
    `SMALL_CLIENT` exactly `SMALL_CLIENT_POSTS` (= 40) rows, fewer than the predictors'
    50-row minimum: its requests are served by the global model. Default size 4,000 posts.

Leads
    Each lead has a latent interest that drives pages viewed, emails opened and whether a
    demo was requested, plus a source, industry, company size, region (a protected
    attribute) and days since first touch. Conversion is logistic: a demo request, pages
    and emails, good sources (referral, webinar, event), SaaS and mid-size companies raise
    it; stale leads convert less; part of the latent interest stays unobserved (noise).
    Region (americas, emea, apac) has a deliberately mild effect (log-odds within +-0.05)
    and is drawn independently of every other attribute, so a model using it still passes
    a demographic-parity gate of 0.8. The base rate is about 43 % (a lead here is a
    marketing-qualified lead; converted = became a sales opportunity): with the
    predicted-positive share near 35 % rather than 15 %, the per-region selection rates
    measured on a 1,000-row validation split vary by sampling far less, so the parity
    ratio reflects the model rather than the luck of the split. Default size 5,000 leads,
    `BIG_CLIENT` about 60 % of them.
"""

import numpy
import pandas

DEFAULT_SEED = 20240611

BIG_CLIENT = "acme-outdoor"
SMALL_CLIENT = "pixel-bakery"
SMALL_CLIENT_POSTS = 40
# The other clients share the remaining posts: (client, share of posts, accounts managed).
POST_CLIENTS = (
    (BIG_CLIENT, 0.40, 60),
    ("brightside-cafe", 0.25, 40),
    ("nova-fitness", 0.20, 35),
    ("urban-threads", 0.15, 30),
)
SMALL_CLIENT_ACCOUNTS = 3
LEAD_CLIENTS = ((BIG_CLIENT, 0.6), ("urban-threads", 0.4))

PLATFORM_SHARE = {"facebook": 0.20, "instagram": 0.30, "linkedin": 0.15, "tiktok": 0.20, "x": 0.15}
PLATFORM_MEDIA = {
    "facebook": {"image": 0.40, "video": 0.30, "text": 0.20, "carousel": 0.10},
    "instagram": {"image": 0.45, "video": 0.30, "carousel": 0.25},
    "linkedin": {"text": 0.45, "image": 0.35, "video": 0.15, "carousel": 0.05},
    "tiktok": {"video": 1.0},
    "x": {"text": 0.60, "image": 0.30, "video": 0.10},
}
# log mean followers, likes per follower, comments per like, hashtags (Poisson mean),
# share of posts with a link.
PLATFORM_PROFILE = {
    "facebook": (9.0, 0.012, 0.08, 1.5, 0.30),
    "instagram": (9.5, 0.035, 0.03, 8.0, 0.02),
    "linkedin": (8.0, 0.020, 0.06, 2.5, 0.40),
    "tiktok": (10.0, 0.060, 0.02, 4.0, 0.01),
    "x": (8.5, 0.008, 0.10, 1.5, 0.35),
}
FOLLOWERS_LOG_SPREAD = 2.1
MEDIA_EFFECT = {"carousel": 0.25, "image": 0.0, "text": -0.30, "video": 0.35}
WEEKEND_EFFECT = {"facebook": 0.05, "instagram": 0.15, "linkedin": -0.35, "tiktok": 0.15, "x": 0.0}
LIKES_NOISE = 0.25
COMMENTS_NOISE = 0.60
# Share of captions that ask the audience a question (unobserved): comments x 2.5.
QUESTION_SHARE = 0.2
PLANTED_ANOMALY_SHARE = 0.01

SOURCE_SHARE = {"event": 0.08, "organic_search": 0.25, "outbound": 0.12, "paid_search": 0.18,
                "paid_social": 0.15, "referral": 0.12, "webinar": 0.10}
SOURCE_EFFECT = {"event": 0.4, "organic_search": 0.2, "outbound": -0.5, "paid_search": 0.0,
                 "paid_social": -0.3, "referral": 0.7, "webinar": 0.5}
INDUSTRY_EFFECT = {"education": -0.2, "finance": 0.2, "healthcare": -0.1, "manufacturing": -0.2,
                   "media": 0.1, "retail": 0.0, "saas": 0.4}
COMPANY_SIZE_SHARE = {"1-10": 0.25, "11-50": 0.30, "51-200": 0.22, "201-1000": 0.15,
                      "1000+": 0.08}
COMPANY_SIZE_EFFECT = {"1-10": -0.4, "11-50": 0.0, "51-200": 0.3, "201-1000": 0.2, "1000+": -0.2}
REGION_SHARE = {"americas": 0.40, "apac": 0.25, "emea": 0.35}
REGION_EFFECT = {"americas": 0.05, "apac": -0.05, "emea": 0.0}
LEAD_INTERCEPT = -1.9


def _pick(rng: numpy.random.Generator, shares: dict[str, float], size: int) -> numpy.ndarray:
    names = list(shares)
    weights = numpy.array([shares[name] for name in names], dtype=float)
    chosen = rng.choice(len(names), size=size, p=weights / weights.sum())
    return numpy.array(names, dtype=object)[chosen]


def _lookup(table: dict[str, float], keys: numpy.ndarray) -> numpy.ndarray:
    return numpy.array([table[key] for key in keys], dtype=float)


def _accounts(rng: numpy.random.Generator) -> pandas.DataFrame:
    """Every client's accounts: platform, followers, latent quality, usual posting rate."""
    managed = [(client, accounts) for client, _, accounts in POST_CLIENTS]
    managed.append((SMALL_CLIENT, SMALL_CLIENT_ACCOUNTS))
    client = numpy.concatenate([[name] * count for name, count in managed]).astype(object)
    n = len(client)
    platform = _pick(rng, PLATFORM_SHARE, n)
    log_mean = numpy.array([PLATFORM_PROFILE[p][0] for p in platform])
    followers = numpy.round(numpy.exp(rng.normal(log_mean, FOLLOWERS_LOG_SPREAD)))
    followers = numpy.maximum(50, followers)
    return pandas.DataFrame({
        "client_id": client,
        "platform": platform,
        "followers": followers.astype(numpy.int64),
        "quality": rng.normal(0.0, 0.4, n),
        "posting_rate": numpy.exp(rng.normal(numpy.log(0.8), 0.5, n)),
        "activity": rng.pareto(1.5, n) + 1.0,  # some accounts post far more than others
    })


def _post_accounts(rng: numpy.random.Generator, accounts: pandas.DataFrame, n: int
                   ) -> numpy.ndarray:
    """Which account wrote each post: per client its share of posts, then by activity."""
    others = n - SMALL_CLIENT_POSTS
    counts = {client: round(share * others) for client, share, _ in POST_CLIENTS}
    counts[BIG_CLIENT] += others - sum(counts.values())
    counts[SMALL_CLIENT] = SMALL_CLIENT_POSTS
    chosen = []
    for client, count in counts.items():
        rows = numpy.flatnonzero(accounts["client_id"].to_numpy() == client)
        activity = accounts["activity"].to_numpy()[rows]
        chosen.append(rng.choice(rows, size=count, p=activity / activity.sum()))
    return numpy.concatenate(chosen)


def _log_like_rate(*, platform, media, hour, weekday, caption_length, hashtags, mentions,
                   has_link, sentiment, posting_rate, followers, quality) -> numpy.ndarray:
    """Log of the expected likes per follower of each post (the signal the models learn)."""
    base = numpy.log([PLATFORM_PROFILE[p][1] for p in platform])
    hour_effect = (0.30 * numpy.exp(-((hour - 12) ** 2) / 8.0)
                   + 0.40 * numpy.exp(-((hour - 19) ** 2) / 8.0)
                   - 0.25 * ((hour < 6) | (hour > 22)))
    weekend = (weekday >= 5) * _lookup(WEEKEND_EFFECT, platform)
    caption_effect = -0.12 * (numpy.log1p(caption_length) - numpy.log(150)) ** 2
    hashtag_effect = 0.05 * numpy.minimum(hashtags, 8) - 0.04 * numpy.maximum(hashtags - 12, 0)
    return (base + _lookup(MEDIA_EFFECT, media) + hour_effect + weekend + caption_effect
            + hashtag_effect + 0.08 * numpy.minimum(mentions, 3) - 0.35 * has_link
            + 0.30 * sentiment - 0.30 * numpy.log(posting_rate)
            - 0.12 * (numpy.log(followers) - 9.0) + quality)


def demo_posts(*, seed: int = DEFAULT_SEED, n: int = 4000) -> pandas.DataFrame:
    """`n` social posts with likes and comments (see the module docstring)."""
    if n < 10 * SMALL_CLIENT_POSTS:
        raise ValueError(f"demo_posts needs n >= {10 * SMALL_CLIENT_POSTS}, got {n}")
    rng = numpy.random.default_rng(seed)
    accounts = _accounts(rng)
    account = accounts.iloc[_post_accounts(rng, accounts, n)].reset_index(drop=True)
    platform = account["platform"].to_numpy()
    quality = account["quality"].to_numpy()

    media = numpy.array([_pick(rng, PLATFORM_MEDIA[p], 1)[0] for p in platform], dtype=object)
    peak = numpy.where(rng.random(n) < 0.5, 12.0, 19.0)
    hour = numpy.where(rng.random(n) < 0.75, numpy.round(rng.normal(peak, 2.5)),
                       rng.integers(0, 24, n)).astype(numpy.int64) % 24
    weekday = rng.choice(7, size=n, p=[0.16] * 5 + [0.10] * 2).astype(numpy.int64)
    caption_mean = numpy.where(media == "text", numpy.log(300), numpy.log(120))
    caption_length = numpy.minimum(2200, numpy.round(numpy.exp(rng.normal(caption_mean, 0.7))))
    caption_length = caption_length.astype(numpy.int64)
    hashtags = numpy.minimum(30, rng.poisson([PLATFORM_PROFILE[p][3] for p in platform]))
    mentions = numpy.minimum(10, rng.poisson(0.6, n))
    has_link = rng.random(n) < numpy.array([PLATFORM_PROFILE[p][4] for p in platform])
    sentiment = numpy.round(2.0 * rng.beta(5.0, 3.0, n) - 1.0, 3)
    posting_rate = account["posting_rate"].to_numpy() * numpy.exp(rng.normal(0, 0.2, n))
    posting_rate = numpy.round(posting_rate, 2)
    posting_rate = numpy.maximum(posting_rate, 0.05)
    followers = numpy.round(account["followers"].to_numpy() * numpy.exp(rng.normal(0, 0.02, n)))
    followers = numpy.maximum(followers, 50).astype(numpy.int64)

    log_rate = _log_like_rate(
        platform=platform, media=media, hour=hour, weekday=weekday,
        caption_length=caption_length, hashtags=hashtags, mentions=mentions,
        has_link=has_link, sentiment=sentiment, posting_rate=posting_rate,
        followers=followers, quality=quality)
    expected_likes = followers * numpy.exp(log_rate)
    comment_ratio = numpy.array([PLATFORM_PROFILE[p][2] for p in platform]) * numpy.exp(
        0.12 * numpy.minimum(mentions, 3) + 0.8 * numpy.maximum(-sentiment, 0)
        + 0.25 * (media == "text") + numpy.log(2.5) * (rng.random(n) < QUESTION_SHARE))
    expected_comments = expected_likes * comment_ratio
    # The account's usual engagement per post: its size, platform and quality, not the post.
    usual_rate = (numpy.log([PLATFORM_PROFILE[p][1] for p in platform])
                  - 0.12 * (numpy.log(followers) - 9.0) + quality
                  - 0.30 * numpy.log(account["posting_rate"].to_numpy()))
    usual_engagement = followers * numpy.exp(usual_rate) * (
        1.0 + numpy.array([PLATFORM_PROFILE[p][2] for p in platform]))
    avg_engagement_30d = numpy.round(usual_engagement * numpy.exp(rng.normal(0, 0.12, n)), 1)

    likes_mean = expected_likes * numpy.exp(rng.normal(0, LIKES_NOISE, n))
    comments_mean = expected_comments * numpy.exp(rng.normal(0, COMMENTS_NOISE, n))

    # Anomalies hit the smaller half of the accounts (small creators go viral or buy
    # likes); a large account's post rarely strays by an order of magnitude.
    smaller_half = followers <= numpy.median(followers)
    planted = smaller_half & (rng.random(n) < 2 * PLANTED_ANOMALY_SHARE)
    kind = rng.integers(0, 3, n)  # 0 viral spike, 1 dead post, 2 bought likes
    viral, dead, bought = planted & (kind == 0), planted & (kind == 1), planted & (kind == 2)
    spike = rng.uniform(5, 10, n)
    drop = rng.uniform(0.02, 0.08, n)
    likes_mean = numpy.where(viral, likes_mean * spike, likes_mean)
    comments_mean = numpy.where(viral, comments_mean * spike, comments_mean)
    likes_mean = numpy.where(dead, likes_mean * drop, likes_mean)
    comments_mean = numpy.where(dead, comments_mean * drop, comments_mean)
    likes_mean = numpy.where(bought, likes_mean * rng.uniform(5, 15, n), likes_mean)

    frame = pandas.DataFrame({
        "client_id": account["client_id"].to_numpy(),
        "platform": platform,
        "media_type": media,
        "followers": followers,
        "hour": hour,
        "weekday": weekday,
        "caption_length": caption_length,
        "hashtags": hashtags.astype(numpy.int64),
        "mentions": mentions.astype(numpy.int64),
        "has_link": has_link,
        "sentiment": sentiment,
        "recent_posting_rate": posting_rate,
        "avg_engagement_30d": avg_engagement_30d,
        "likes": rng.poisson(likes_mean).astype(numpy.int64),
        "comments": rng.poisson(comments_mean).astype(numpy.int64),
        "planted_anomaly": planted,
    })
    # Rows in a shuffled order, not grouped by client.
    return frame.iloc[rng.permutation(n)].reset_index(drop=True)


def demo_leads(*, seed: int = DEFAULT_SEED, n: int = 5000) -> pandas.DataFrame:
    """`n` sales leads with `converted` (0/1) (see the module docstring)."""
    if n < 100:
        raise ValueError(f"demo_leads needs n >= 100, got {n}")
    rng = numpy.random.default_rng(seed)
    interest = rng.normal(0.0, 1.0, n)
    source = _pick(rng, SOURCE_SHARE, n)
    industry = _pick(rng, dict.fromkeys(INDUSTRY_EFFECT, 1.0), n)
    company_size = _pick(rng, COMPANY_SIZE_SHARE, n)
    region = _pick(rng, REGION_SHARE, n)
    pages_viewed = rng.poisson(numpy.exp(1.3 + 0.5 * interest)).astype(numpy.int64)
    emails_opened = numpy.minimum(40, rng.poisson(numpy.exp(0.9 + 0.4 * interest)))
    emails_opened = emails_opened.astype(numpy.int64)
    days_since_first_touch = (numpy.floor(rng.exponential(35.0, n)) + 1).astype(numpy.int64)
    demo_logit = -1.8 + 0.9 * interest + 0.5 * (source == "webinar") + 0.4 * (source == "event")
    demo_requested = rng.random(n) < 1.0 / (1.0 + numpy.exp(-demo_logit))

    logit = (LEAD_INTERCEPT + 2.2 * demo_requested + 0.9 * numpy.log1p(pages_viewed)
             + 0.12 * emails_opened - 0.015 * days_since_first_touch
             + _lookup(SOURCE_EFFECT, source) + _lookup(INDUSTRY_EFFECT, industry)
             + _lookup(COMPANY_SIZE_EFFECT, company_size) + _lookup(REGION_EFFECT, region)
             + 0.3 * interest)
    converted = (rng.random(n) < 1.0 / (1.0 + numpy.exp(-logit))).astype(numpy.int64)
    return pandas.DataFrame({
        "client_id": _pick(rng, dict(LEAD_CLIENTS), n),
        "source": source,
        "industry": industry,
        "company_size": company_size,
        "region": region,
        "pages_viewed": pages_viewed,
        "emails_opened": emails_opened,
        "days_since_first_touch": days_since_first_touch,
        "demo_requested": demo_requested,
        "converted": converted,
    })
