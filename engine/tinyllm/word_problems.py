"""Arithmetic and unit word problems with worked steps, for reasoning SFT; every answer is computed.

Each problem is drawn from a template with random numbers (``random.Random(seed)``, so a seed
always gives the same set). Every step shows an expression and its value as the calculator
(:mod:`engine.tinyllm.calculator`) computes it, and the final answer is the last such value:
nothing is written by hand. The kinds: shopping with change, two purchases, speed x time with
minutes, average speed, kilometres and metres both ways, hours and minutes, and discounts.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from fractions import Fraction

from engine.tinyllm.calculator import evaluate, format_number
from engine.tinyllm.sft_data import Markers, ReasoningRow

SYSTEM_PROMPTS: dict[Markers, str] = {
    "zh": "你是一个细心的数学助手。先一步一步写出推理过程，再给出最终答案。",
    "en": "You are a careful math assistant. Reason step by step, then give the final answer.",
}

_NAMES = {"zh": ("小明", "小红", "小刚", "小丽"), "en": ("Tom", "Anna", "Li Wei", "Sara")}
#: (Chinese name, Chinese measure word, English singular, English plural)
_ITEMS = (
    ("笔记本", "本", "notebook", "notebooks"),
    ("苹果", "个", "apple", "apples"),
    ("铅笔", "支", "pencil", "pencils"),
    ("面包", "个", "bun", "buns"),
    ("牛奶", "盒", "carton of milk", "cartons of milk"),
    ("本子", "本", "exercise book", "exercise books"),
)


class _Steps:
    """The worked steps of one problem: sentences, each computed expression shown with its value."""

    def __init__(self, markers: Markers) -> None:
        self.markers = markers
        self.sentences: list[str] = []

    def say(self, zh: str, en: str) -> None:
        self.sentences.append(zh if self.markers == "zh" else en)

    def compute(self, expression: str, zh: str, en: str) -> Fraction:
        """Evaluate ``expression`` and add a sentence showing it; ``{}`` in the texts is ``expression = value``."""
        value = evaluate(expression)
        if not isinstance(value, Fraction):
            raise ValueError(f"word problem step {expression!r} is not exact")
        shown = f"{expression} = {format_number(value)}"
        self.say(zh.format(shown), en.format(shown))
        return value

    def cot(self) -> str:
        return ("" if self.markers == "zh" else " ").join(self.sentences)


def _n(value: Fraction | int) -> str:
    return format_number(Fraction(value))


def _shopping(rng: random.Random, m: Markers) -> tuple[str, _Steps, str, str]:
    zh_item, measure, item, items = rng.choice(_ITEMS)
    name = rng.choice(_NAMES[m])
    price = Fraction(rng.randint(2, 60), rng.choice((1, 2)))
    quantity = rng.randint(2, 12)
    paid = (int(price * quantity) // 50 + 1) * 50
    q = (
        f"一{measure}{zh_item}{_n(price)}元，{name}买了{quantity}{measure}，付了{paid}元。应该找回多少元？",
        f"One {item} costs {_n(price)} yuan. {name} buys {quantity} {items} and pays {paid} yuan. "
        "How much change is given back?",
    )
    s = _Steps(m)
    s.say(f"每{measure}{zh_item}{_n(price)}元，买了{quantity}{measure}。", f"Each {item} costs {_n(price)} yuan.")
    cost = s.compute(f"{_n(price)} × {quantity}", "总价是 {} 元。", "The total price is {} yuan.")
    s.say(f"付了 {paid} 元。", f"{name} pays {paid} yuan.")
    change = s.compute(f"{paid} - {_n(cost)}", "找回 {} 元。", "The change is {} yuan.")
    return q[m == "en"], s, _n(change), "元" if m == "zh" else "yuan"


def _two_purchases(rng: random.Random, m: Markers) -> tuple[str, _Steps, str, str]:
    (zh1, mw1, it1, its1), (zh2, mw2, it2, its2) = rng.sample(_ITEMS, 2)
    p1, p2 = rng.randint(2, 30), Fraction(rng.randint(3, 40), 2)
    n1, n2 = rng.randint(2, 9), rng.randint(2, 9)
    q = (
        f"{zh1}每{mw1}{p1}元，{zh2}每{mw2}{_n(p2)}元。买{n1}{mw1}{zh1}和{n2}{mw2}{zh2}，一共要付多少元？",
        f"One {it1} costs {p1} yuan and one {it2} costs {_n(p2)} yuan. "
        f"How much do {n1} {its1} and {n2} {its2} cost in total?",
    )
    s = _Steps(m)
    a = s.compute(f"{p1} × {n1}", f"{zh1}的价钱是 {{}} 元。", f"The {its1} cost {{}} yuan.")
    b = s.compute(f"{_n(p2)} × {n2}", f"{zh2}的价钱是 {{}} 元。", f"The {its2} cost {{}} yuan.")
    total = s.compute(f"{_n(a)} + {_n(b)}", "合计 {} 元。", "Together that is {} yuan.")
    return q[m == "en"], s, _n(total), "元" if m == "zh" else "yuan"


def _travel(rng: random.Random, m: Markers) -> tuple[str, _Steps, str, str]:
    speed, hours, minutes = rng.randrange(30, 125, 5), rng.randint(1, 5), rng.choice((15, 30, 45))
    q = (
        f"一辆汽车以每小时{speed}千米的速度行驶了{hours}小时{minutes}分钟。它一共行驶了多少千米？",
        f"A car drives at {speed} km/h for {hours} hours and {minutes} minutes. How many kilometres does it travel?",
    )
    s = _Steps(m)
    part = s.compute(f"{minutes} ÷ 60", f"{minutes} 分钟是 {{}} 小时。", f"{minutes} minutes are {{}} hours.")
    time = s.compute(f"{hours} + {_n(part)}", "总时间是 {} 小时。", "The whole time is {} hours.")
    s.say("路程等于速度乘以时间。", "Distance is speed times time.")
    distance = s.compute(f"{speed} × {_n(time)}", "路程是 {} 千米。", "The distance is {} km.")
    return q[m == "en"], s, _n(distance), "千米" if m == "zh" else "km"


def _average_speed(rng: random.Random, m: Markers) -> tuple[str, _Steps, str, str]:
    speed, hours = rng.randint(4, 90), rng.randint(2, 8)
    distance = speed * hours  # chosen so the answer is a whole number; the answer itself is computed below
    q = (
        f"{rng.choice(_NAMES['zh'])}骑车{hours}小时走了{distance}千米。平均每小时走多少千米？",
        f"{rng.choice(_NAMES['en'])} cycles {distance} km in {hours} hours. What is the average speed in km/h?",
    )
    s = _Steps(m)
    s.say(
        f"路程是 {distance} 千米，时间是 {hours} 小时。",
        f"The distance is {distance} km and the time is {hours} hours.",
    )
    s.say("平均速度等于路程除以时间。", "Average speed is distance divided by time.")
    result = s.compute(f"{distance} ÷ {hours}", "平均速度是每小时 {} 千米。", "The average speed is {} km/h.")
    return q[m == "en"], s, _n(result), "千米/小时" if m == "zh" else "km/h"


def _km_to_m(rng: random.Random, m: Markers) -> tuple[str, _Steps, str, str]:
    km, metres = rng.randint(1, 40), rng.randint(1, 999)
    q = (f"{km}千米{metres}米等于多少米？", f"How many metres are {km} km and {metres} m?")
    s = _Steps(m)
    s.say("1 千米等于 1000 米。", "One kilometre is 1000 metres.")
    whole = s.compute(f"{km} × 1000", f"{km} 千米是 {{}} 米。", f"{km} km is {{}} m.")
    total = s.compute(f"{_n(whole)} + {metres}", "再加上余下的米数：{} 米。", "Adding the remaining metres: {} m.")
    return q[m == "en"], s, _n(total), "米" if m == "zh" else "m"


def _m_to_km(rng: random.Random, m: Markers) -> tuple[str, _Steps, str, str]:
    metres = rng.randrange(250, 50001, 250)
    q = (f"{metres}米是多少千米？", f"How many kilometres are {metres} metres?")
    s = _Steps(m)
    s.say("1 千米等于 1000 米。", "One kilometre is 1000 metres.")
    s.say("米换成千米要除以 1000。", "To turn metres into kilometres, divide by 1000.")
    result = s.compute(f"{metres} ÷ 1000", "所以是 {} 千米。", "So it is {} km.")
    return q[m == "en"], s, _n(result), "千米" if m == "zh" else "km"


def _duration(rng: random.Random, m: Markers) -> tuple[str, _Steps, str, str]:
    hours, minutes = rng.randint(1, 12), rng.randint(1, 59)
    q = (f"{hours}小时{minutes}分钟是多少分钟？", f"How many minutes are {hours} hours and {minutes} minutes?")
    s = _Steps(m)
    s.say("1 小时等于 60 分钟。", "One hour is 60 minutes.")
    whole = s.compute(f"{hours} × 60", f"{hours} 小时是 {{}} 分钟。", f"{hours} hours are {{}} minutes.")
    total = s.compute(
        f"{_n(whole)} + {minutes}", f"再加上 {minutes} 分钟：{{}} 分钟。", f"Adding {minutes} minutes: {{}} minutes."
    )
    return q[m == "en"], s, _n(total), "分钟" if m == "zh" else "minutes"


def _discount(rng: random.Random, m: Markers) -> tuple[str, _Steps, str, str]:
    price, off = rng.randrange(40, 1001, 10), rng.randrange(5, 55, 5)
    q = (
        f"一件外套原价{price}元，现在打折优惠{off}%。现价是多少元？",
        f"A jacket costs {price} yuan and is on sale at {off}% off. What is the sale price?",
    )
    s = _Steps(m)
    s.say(f"优惠 {off}% 表示只付原价的一部分。", f"{off}% off means paying only part of the price.")
    pay = s.compute(f"100 - {off}", "要付的比例是 {}%。", "The part paid is {}%.")
    rate = s.compute(f"{_n(pay)} ÷ 100", "换成小数是 {}。", "As a decimal that is {}.")
    sale = s.compute(f"{price} × {_n(rate)}", "现价是 {} 元。", "The sale price is {} yuan.")
    return q[m == "en"], s, _n(sale), "元" if m == "zh" else "yuan"


_KINDS: tuple[Callable[[random.Random, Markers], tuple[str, _Steps, str, str]], ...] = (
    _shopping,
    _two_purchases,
    _travel,
    _average_speed,
    _km_to_m,
    _m_to_km,
    _duration,
    _discount,
)


def reasoning_problems(count: int, *, seed: int = 0, markers: Markers = "zh") -> list[ReasoningRow]:
    """Return ``count`` distinct word problems as reasoning rows, the same ones for the same seed.

    The kinds take turns; each row's ``cot`` is 3-8 sentences of steps (Chinese or English, as
    ``markers``) and its ``final`` the computed number with its unit, such as ``26 元`` or ``26 yuan``.
    """
    rng = random.Random(seed)
    rows: list[ReasoningRow] = []
    seen: set[str] = set()
    attempts = 0
    while len(rows) < count and attempts < 20 * count + 100:
        kind = _KINDS[attempts % len(_KINDS)]
        attempts += 1
        question, steps, value, unit = kind(rng, markers)
        if question in seen:
            continue  # the small kinds repeat themselves; a duplicate teaches nothing
        seen.add(question)
        rows.append(
            ReasoningRow(system=SYSTEM_PROMPTS[markers], user=question, cot=steps.cot(), final=f"{value} {unit}")
        )
    return rows
