"""Synthetic calls where the customer speaks first, and a chat with no service phrases, for the role tests.

Each call is a script for espeak-ng (scripts/synth.py); Mandarin turns are pinyin with tone digits read by the
``cmn-latn-pinyin`` voices, with the characters as the reference. Whisper-base hears espeak Mandarin poorly,
which is the point: roles must come out of garbled text.
"""

from __future__ import annotations

from synth import AGENT_VOICE_EN, AGENT_VOICE_ZH, CUSTOMER_VOICE_EN, CUSTOMER_VOICE_ZH, Turn

ZH_RATE = 145  # as scripts/make_examples.py: slow enough for the pinyin voice to stay clear
EN_RATE = 170


def _zh(speaker: str, pinyin: str, hanzi: str, gap: float = 0.4) -> Turn:
    voice = AGENT_VOICE_ZH if speaker == "agent" else CUSTOMER_VOICE_ZH
    return Turn(speaker, pinyin, voice, gap=gap, rate=ZH_RATE, transcript=hanzi)


def _en(speaker: str, text: str, gap: float = 0.4) -> Turn:
    return Turn(speaker, text, AGENT_VOICE_EN if speaker == "agent" else CUSTOMER_VOICE_EN, gap=gap, rate=EN_RATE)


# Outbound: the customer answers the phone, the bank's agent introduces herself second.
EN_OUTBOUND = (
    _en("customer", "Hello?", gap=0.6),
    _en("agent", "Hi, this is Maria calling from Acme Bank about a payment on your card. Could I confirm your "
        "date of birth, please?"),
    _en("customer", "Sure, it is the third of May, nineteen eighty."),
    _en("agent", "Thank you. Did you make a payment of two hundred dollars yesterday?"),
    _en("customer", "No, I did not. That was not me."),
    _en("agent", "I am sorry about that. I have blocked the card and a new one is on its way. Is there anything "
        "else I can help you with?"),
    _en("customer", "No, that is all. Bye."),
)  # fmt: skip

# A broadband call-back in Mandarin: the customer answers 喂, the agent gives the line and her number.
ZH_CALLBACK = (
    _zh("customer", "wei4?", "喂？", gap=0.6),
    _zh("agent", "nin2 hao3, wo3 shi4 kuan1 dai4 ke4 fu2, gong1 hao4 san1 er4 yi1, nin2 fan3 ying4 de5 wang3 luo4 "
        "wen4 ti2 yi3 jing1 chu3 li3 hao3 le5.", "您好，我是宽带客服，工号三二一，您反映的网络问题已经处理好了。"),
    _zh("customer", "hao3 de5, xian4 zai4 wang3 su4 kuai4 duo1 le5.", "好的，现在网速快多了。"),
    _zh("agent", "qing3 wen4 hai2 you3 shen2 me5 ke3 yi3 bang1 nin2?", "请问还有什么可以帮您？"),
    _zh("customer", "mei2 you3 le5, xie4 xie4.", "没有了，谢谢。"),
    _zh("agent", "gan3 xie4 nin2 de5 nai4 xin1, zai4 jian4.", "感谢您的耐心，再见。"),
)  # fmt: skip

# The caller speaks first and asks straight away; the agent's greeting comes second.
ZH_CALLER_FIRST = (
    _zh("customer", "wei4, ni3 hao3, wo3 xiang3 wen4 yi1 xia4 wo3 de5 kuai4 di4 zen3 me5 hai2 mei2 dao4?",
        "喂，你好，我想问一下我的快递怎么还没到？"),
    _zh("agent", "nin2 hao3, hen3 gao1 xing4 wei4 nin2 fu2 wu4, qing3 ti2 gong1 yi1 xia4 nin2 de5 ding4 dan1 hao4.",
        "您好，很高兴为您服务，请提供一下您的订单号。"),
    _zh("customer", "ding4 dan1 hao4 shi4 wu3 wu3 liu4 qi1 ba1.", "订单号是五五六七八。"),
    _zh("agent", "hao3 de5, qing3 shao1 deng3, wo3 wei4 nin2 cha2 xun2 yi1 xia4.", "好的，请稍等，我为您查询一下。"),
    _zh("agent", "fei1 chang2 bao4 qian4, kuai4 di4 ming2 tian1 jiu4 neng2 song4 dao4.", "非常抱歉，快递明天就能送到。",
        gap=1.0),
    _zh("customer", "hao3, xie4 xie4.", "好，谢谢。"),
)  # fmt: skip

# Two friends making plans: nothing in it says who would be the agent.
EN_NO_CUES = (
    _en("agent", "Are you coming to the game on Saturday?"),
    _en("customer", "Maybe. It depends on the weather."),
    _en("agent", "The forecast says sunshine all weekend."),
    _en("customer", "Then count me in. Shall we meet at noon?"),
    _en("agent", "Noon works. See you there."),
)

CUSTOMER_FIRST = {"en_outbound": ("en", EN_OUTBOUND), "zh_callback": ("zh", ZH_CALLBACK),
                  "zh_caller_first": ("zh", ZH_CALLER_FIRST)}  # fmt: skip

# Written after the phrase lists were settled and never used to tune them: the held-out check of the threshold.
EN_DELIVERY_CALLBACK = (
    _en("customer", "Hi, who is this?", gap=0.6),
    _en("agent", "Good afternoon, you are speaking with Tom from Swift Parcels. You asked us to call about a "
        "missing delivery."),
    _en("customer", "Yes, my parcel never arrived, it was due on Monday."),
    _en("agent", "I apologise for the delay. Could you give me your order number?"),
    _en("customer", "It is A B one two three four."),
    _en("agent", "Thank you, I have booked a new delivery for tomorrow morning. Have a good day."),
    _en("customer", "Great, thanks."),
)  # fmt: skip

ZH_BANK_OUTBOUND = (
    _zh("customer", "wei4, na3 wei4?", "喂，哪位？", gap=0.6),
    _zh("agent", "nin2 hao3, zhe4 li3 shi4 zhao1 shang1 yin2 hang2 xin4 yong4 ka3 zhong1 xin1, qing3 wen4 shi4 "
        "wang2 xian1 sheng1 ma5?", "您好，这里是招商银行信用卡中心，请问是王先生吗？"),
    _zh("customer", "shi4 wo3, shen2 me5 shi4?", "是我，什么事？"),
    _zh("agent", "nin2 de5 xin4 yong4 ka3 ben3 yue4 zhang4 dan1 hai2 mei2 you3 huan2 kuan3, gei3 nin2 dai4 lai2 "
        "bu4 bian4 qing3 liang4 jie3.", "您的信用卡本月账单还没有还款，给您带来不便请谅解。"),
    _zh("customer", "wo3 ming2 tian1 jiu4 huan2.", "我明天就还。"),
    _zh("agent", "hao3 de5, gan3 xie4 nin2 de5 zhi1 chi2, zai4 jian4.", "好的，感谢您的支持，再见。"),
)  # fmt: skip

ZH_NO_CUES = (
    _zh("agent", "zhou1 mo4 qu4 pa2 shan1 ma5?", "周末去爬山吗？"),
    _zh("customer", "hao3 a5, ji3 dian3 chu1 fa1?", "好啊，几点出发？"),
    _zh("agent", "zao3 shang4 ba1 dian3 zai4 men2 kou3 jian4.", "早上八点在门口见。"),
    _zh("customer", "xing2, wo3 dai4 dian3 shui3.", "行，我带点水。"),
    _zh("agent", "ji4 de5 dai4 san3, ting1 shuo1 xia4 wu3 you3 yu3.", "记得带伞，听说下午有雨。"),
)

HELD_OUT = {"en_delivery_callback": ("en", EN_DELIVERY_CALLBACK), "zh_bank_outbound": ("zh", ZH_BANK_OUTBOUND),
            "zh_no_cues": ("zh", ZH_NO_CUES)}  # fmt: skip
