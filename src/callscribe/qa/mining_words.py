"""Word lists for mining calls: stopwords, complaint words and the complaint topic lexicon (Chinese + English).

Kept as Python data so they ship with the package; edit here to tune what the insights report counts.
"""

from __future__ import annotations

from dataclasses import dataclass

_ZH_STOPWORDS = """
的 了 是 我 你 您 他 她 它 我们 你们 您们 他们 这 那 这个 那个 这些 那些 这样 那样 这边 那边 一个 一下 一些
吗 呢 吧 啊 呀 哦 嗯 噢 哎 诶 嘛 啦 喂 哈 唉 就 都 也 还 又 再 很 太 非常 特别 比较 有点 一点 一直 已经 马上
在 有 没 没有 不 不是 是的 对 对的 好 好的 行 可以 能 会 要 想 让 给 把 被 跟 和 与 及 或 或者 还是 但是 但
因为 所以 如果 然后 那么 就是 其实 可能 应该 需要 还有 什么 怎么 怎么样 为什么 哪 哪个 哪里 多少 几 谁 时候
现在 今天 明天 昨天 刚才 之前 以后 一下子 上 下 里 中 时 后 前 到 从 向 对于 关于 为 以 等 等等 个 位 些 次
请 请问 麻烦 谢谢 感谢 您好 你好 喂喂 先生 女士 小姐 这里 那里 自己 知道 觉得 看 说 问 帮 帮您 一样 东西
我要 我想 你们 嗯嗯 好吧 行吧 对吧 是吗 是不是 有没有 能不能 可不可以 这么 那么 怎样 如何 这块 那块 方面 情况 问题 一定
"""

_EN_STOPWORDS = """
a an the and or but if then so because as of at by for with about against between into through during before
after above below to from up down in out on off over under again further once here there when where why how
all any both each few more most other some such no nor not only own same than too very can will just don don't
should now i me my myself we our ours you your yours he him his she her it its they them their what which who
whom this that these those am is are was were be been being have has had having do does did doing would could
i'm i've i'll i'd you're you've you'll it's that's there's let's can't won't isn't aren't wasn't didn't doesn't
haven't hasn't okay ok yes yeah yep uh um oh hi hello hey well like get got go going know think want need please
thank thanks sir madam ma'am one two also really just right sure see let call calling today minute moment
"""

STOPWORDS: frozenset[str] = frozenset((_ZH_STOPWORDS + _EN_STOPWORDS).split())

_ZH_COMPLAINTS = """
投诉 不满 不满意 太慢 太差 太贵 怎么回事 搞什么 还没 一直没 根本 凭什么 骗 坑 乱扣 乱收费 多扣 扣了
不合理 态度差 态度很差 不耐烦 没人管 没解决 退钱 受不了 气死 离谱 什么破 又是 好几次 三次了 等了
"""
_EN_COMPLAINTS = """
complain, complaint, ridiculous, unacceptable, terrible, worst, awful, frustrated, frustrating, angry, upset,
still not, still haven't, never arrived, overcharged, charged twice, rude, waste, scam, fed up, again and again,
not working, doesn't work, disappointed, useless, third time, nobody, refund my
"""

# Words that make a customer utterance a complaint, sentiment aside.
COMPLAINT_WORDS: dict[str, tuple[str, ...]] = {
    "zh": tuple(_ZH_COMPLAINTS.split()),
    "en": tuple(w.strip() for w in _EN_COMPLAINTS.split(",")),
}


@dataclass(frozen=True)
class Topic:
    """A complaint topic: an id, labels for the report and the words that point at it."""

    id: str
    label: str
    label_zh: str
    zh: tuple[str, ...]
    en: tuple[str, ...]


def _topic(topic_id: str, label: str, label_zh: str, zh: str, en: str) -> Topic:
    return Topic(topic_id, label, label_zh, tuple(zh.split()), tuple(w.strip() for w in en.split(",")))


TOPICS: tuple[Topic, ...] = (
    _topic(
        "billing",
        "Billing",
        "费用",
        "费用 话费 扣费 收费 扣钱 账单 多扣 乱扣 套餐 月租 流量费 余额 缴费 价格 太贵",
        "bill, billing, charge, charged, overcharged, fee, fees, invoice, price, payment, plan",
    ),
    _topic(
        "network",
        "Network",
        "信号",
        "信号 网络 网速 断网 掉线 上不了网 没网 宽带 通话中断 打不通 基站 卡顿",
        "signal, network, coverage, internet, connection, dropped, outage, wifi, slow speed",
    ),
    _topic(
        "delivery",
        "Delivery",
        "快递",
        "快递 物流 发货 送货 配送 包裹 没收到 签收 运单 到货 派送",
        "delivery, deliver, delivered, package, parcel, shipping, shipment, courier, arrived",
    ),
    _topic(
        "refund",
        "Refund",
        "退款",
        "退款 退钱 退货 退费 返还 到账 退回",
        "refund, refunded, money back, return, reimburse, chargeback",
    ),
    _topic(
        "attitude",
        "Service attitude",
        "态度",
        "态度 不耐烦 挂电话 挂我电话 敷衍 推脱 没礼貌 服务差 踢皮球 不理",
        "attitude, rude, hung up, impolite, unhelpful, ignored, transferred again, nobody",
    ),
    _topic(
        "waiting",
        "Waiting time",
        "等待",
        "等了 排队 等待 一直没人 等很久 半天 好几天 拖",
        "wait, waited, waiting, hold, queue, hours, days, weeks",
    ),
    _topic(
        "product",
        "Product quality",
        "质量",
        "质量 坏了 故障 不能用 用不了 损坏 破损 维修 死机",
        "broken, defective, faulty, damaged, doesn't work, not working, repair, quality",
    ),
)
