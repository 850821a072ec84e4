"""A GENERATED bilingual stand-in for the Weibo hashtag corpus, used only when the real one is absent.

Each topic has a hashtag (Chinese or English) and a few key words; a post mixes key words of its
topic with common filler words, so hashtag retrieval is learnable but not string matching. The
numbers it gives say nothing about real microblogs: notebooks that fall back to it say so first.
"""
from __future__ import annotations

import numpy as np

from .weibo import WeiboSplit

TOPICS = [
    ("我是歌手", "歌手 舞台 现场 唱 淘汰 评委"), ("中国好声音", "导师 学员 转身 声音 唱功"),
    ("春运", "火车票 回家 车站 排队 抢票 春节"), ("高考", "考生 分数 志愿 考场 作文 复习"),
    ("雾霾", "空气 口罩 污染 北京 pm2.5 天气"), ("世界杯", "足球 进球 球队 比赛 冠军 球迷"),
    ("NBA", "篮球 湖人 科比 投篮 季后赛 詹姆斯"), ("双十一", "淘宝 购物 快递 打折 剁手 红包"),
    ("爸爸去哪儿", "孩子 爸爸 节目 萌 旅行 任务"), ("奔跑吧兄弟", "撕名牌 跑男 游戏 兄弟 综艺"),
    ("iPhone", "apple phone screen battery ios 苹果"), ("travel", "trip beach hotel flight 旅行 风景"),
    ("food", "delicious dinner recipe 好吃 美食 餐厅"), ("movie", "film cinema actor trailer 电影 票房"),
    ("地震", "救援 灾区 祈福 伤亡 震级 平安"), ("马航", "航班 失联 乘客 搜救 飞机 祈祷"),
    ("减肥", "体重 运动 瘦 健身 饮食 跑步"), ("考研", "复试 院校 英语 政治 图书馆 上岸"),
    ("毕业季", "毕业 同学 青春 校园 离别 论文"), ("情人节", "玫瑰 礼物 表白 恋人 约会 巧克力"),
    ("justinbieber", "bieber concert fans music 比伯 演唱会"), ("football", "goal match league striker 球赛"),
    ("股市", "股票 涨停 大盘 基金 牛市 散户"), ("房价", "买房 房贷 楼市 首付 调控 租房"),
]
FILLER = ("今天 真的 我们 大家 觉得 一个 什么 这个 还是 就是 可以 没有 知道 喜欢 希望 终于 "
          "the a is so really today we love what this URL MENTION DIGIT").split()


def generated_weibo(split: str = "valid", n_posts: int = 1200, seed: int = 0) -> WeiboSplit:
    """A GENERATED (not real) bilingual microblog split with the real loader's fields.

    Example:
        >>> d = generated_weibo("test", n_posts=10); len(d), d.source
        (10, 'GENERATED stand-in (not real data)')
    """
    if split not in ("valid", "test"):
        raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
    rng = np.random.default_rng(seed + (0 if split == "valid" else 1))
    posts, tags, convs = [], [], []
    for _ in range(n_posts):
        t = int(rng.integers(len(TOPICS)))
        ts = [TOPICS[t][0]]
        words = TOPICS[t][1].split()
        if rng.random() < 0.1:                                      # a few posts carry two topics
            u = int(rng.integers(len(TOPICS)))
            if u != t:
                ts.append(TOPICS[u][0])
                words += TOPICS[u][1].split()[:2]
        def text(n_key, n_fill):
            w = list(rng.choice(words, size=n_key)) + list(rng.choice(FILLER, size=n_fill))
            return " ".join(rng.permutation(w))
        posts.append(text(2, 8))
        convs.append(text(3, 12))
        tags.append(ts)
    return WeiboSplit(split, posts, tags, convs, "GENERATED stand-in (not real data)")
