"""Near-duplicate detection: clauses, and false-positive / miss rates on a realistic corpus."""

# Russian prose is the point of this corpus, so Cyrillic letters are not confusables here.
# ruff: noqa: RUF001

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest

from gateway import similarity
from gateway.similarity import JACCARD_THRESHOLD, MIN_WORDS, TextIndex, jaccard, shingles, words

# Same-topic paragraphs as liaison officers write them. Several share boilerplate openings and
# closings on purpose: those pairs are the hardest unrelated pairs and must still not match.
ENGLISH = [
    "In accordance with the Protocol on cooperation, the Secretariat informs the Parties that "
    "a regional seminar on countering the financing of terrorism will be held in Astana in "
    "October. The seminar will focus on the misuse of money transfer services and virtual "
    "assets. Each Party is invited to nominate two experts. The Secretariat would appreciate a "
    "reply at the earliest convenience.",
    "In accordance with the Protocol on cooperation, the Secretariat requests information on "
    "national practices for the rehabilitation of returning foreign terrorist fighters and "
    "their families. Particular interest lies in programmes run jointly with religious leaders "
    "and local communities. The Secretariat would appreciate a reply at the earliest "
    "convenience.",
    "The Executive Committee has analysed propaganda materials distributed through encrypted "
    "messaging channels during the last quarter. Most of the materials target young people "
    "between sixteen and twenty-four years old. Recruiters increasingly use short videos and "
    "gaming platforms to make first contact. A summary table of the channels is attached.",
    "The joint working group held its second meeting on the sidelines of the regional security "
    "forum. Participants reviewed the draft list of priority areas and agreed to add "
    "protection of critical infrastructure. The next meeting is planned for the spring, "
    "subject to confirmation by both Parties.",
    "Our analysts observed a rise in fraudulent charitable collections announced on social "
    "networks after the earthquake. Part of the money was transferred to accounts opened in "
    "neighbouring states by persons with known links to extremist groups. We propose to "
    "compare the lists of suspicious accounts held by both sides.",
    "Please find attached the agenda of the consultations on cross-border movement of "
    "explosives precursors. The discussion will cover controls on ammonium nitrate, training "
    "of customs officers and sharing of seizure statistics. Delegations are requested to "
    "confirm the composition of their teams by the end of the month.",
    "The liaison officer appointed by the Secretariat will change in January. The new officer "
    "will take over all ongoing correspondence and has been briefed on the open requests. "
    "Contact details and the accreditation letter will follow through the usual channel. The "
    "Secretariat would appreciate a reply at the earliest convenience.",
    "A training course on investigating the use of cryptocurrencies by terrorist organisations "
    "was completed last week. Thirty investigators from member states attended the course. "
    "Trainers demonstrated blockchain analysis tools and typical laundering schemes through "
    "exchanges with weak identity checks.",
    "We share the preliminary results of the study on radicalisation in prisons. The study "
    "covered twelve institutions and found that isolated inmates are approached by recruiters "
    "within weeks of arrival. Separation regimes and trained chaplains reduced the number of "
    "reported incidents.",
    "The Parties agreed to prepare a joint statement for the international conference on "
    "victims of terrorism. The statement will stress support for survivors and the role of "
    "civil society. A first draft will be circulated by the Secretariat before the end of "
    "next week.",
    "Information was received about a group planning to travel through the region to conflict "
    "zones using forged travel documents. The group reportedly uses a network of safe houses "
    "along the northern route. Border services have been alerted and asked to report any "
    "matches.",
    "The Secretariat proposes to hold the annual consultations on the margins of the General "
    "Assembly in New York. The consultations could review the implementation of the joint "
    "plan of action and identify topics for the next year. Dates will be agreed through the "
    "liaison officers.",
    "In accordance with the Protocol on cooperation, the Secretariat transmits the list of "
    "experts nominated for the working group on terrorist use of the internet. The list "
    "includes specialists in content moderation, digital forensics and strategic "
    "communication. The Secretariat would appreciate a reply at the earliest convenience.",
    "An analysis of recent attacks on transport hubs shows that attackers chose times of peak "
    "passenger flow and avoided areas covered by cameras. Security staff often lacked training "
    "in recognising suspicious behaviour. The report recommends joint exercises with railway "
    "and airport operators.",
    "We would welcome an exchange of views on national lists of designated terrorist "
    "organisations. Differences between the lists complicate the freezing of assets and the "
    "processing of extradition requests. A comparative table prepared by our legal department "
    "is attached for discussion.",
    "The minutes of the meeting record that both sides supported the creation of a secure "
    "communication channel between the liaison officers. Technical experts will assess the "
    "options and report at the next meeting. Costs will be shared equally between the "
    "Parties.",
    "The Secretariat has been informed that a conference on preventing violent extremism "
    "through education will take place in Dushanbe. Organisers invite presentations on school "
    "curricula, teacher training and the role of parents. Registration closes at the end of "
    "the month.",
    "Our service recorded several attempts to purchase drones with modified payload bays "
    "through online marketplaces. The buyers used intermediaries in third countries and paid "
    "in cash. We suggest adding this pattern to the joint list of risk indicators for "
    "customs and postal services.",
    "The Parties reviewed the progress of the project on early warning of terrorist threats "
    "against cultural heritage sites. Pilot monitoring started at three sites and produced the "
    "first weekly reports. An evaluation of the pilot is expected by the end of the year.",
    "Please note the request from the working group for updated statistics on terrorism "
    "related convictions for the past three years. The statistics should distinguish between "
    "financing, recruitment and participation in attacks. The Secretariat would appreciate a "
    "reply at the earliest convenience.",
]

RUSSIAN = [
    "В соответствии с Протоколом о сотрудничестве Секретариат информирует Стороны о проведении "
    "в октябре регионального семинара по противодействию финансированию терроризма. Семинар "
    "будет посвящен злоупотреблению услугами денежных переводов и виртуальными активами. "
    "Каждой Стороне предлагается назначить двух экспертов.",
    "Исполнительный комитет проанализировал пропагандистские материалы, распространявшиеся "
    "через зашифрованные мессенджеры в последнем квартале. Большинство материалов нацелено на "
    "молодежь в возрасте от шестнадцати до двадцати четырех лет. Вербовщики все чаще "
    "используют короткие видео и игровые платформы.",
    "Совместная рабочая группа провела второе заседание на полях регионального форума по "
    "безопасности. Участники рассмотрели проект перечня приоритетных направлений и согласились "
    "добавить защиту критически важной инфраструктуры. Следующее заседание запланировано на "
    "весну.",
    "Наши аналитики отметили рост мошеннических благотворительных сборов в социальных сетях "
    "после землетрясения. Часть средств была переведена на счета, открытые в соседних "
    "государствах лицами, связанными с экстремистскими группами. Предлагаем сверить списки "
    "подозрительных счетов.",
    "Направляем повестку дня консультаций по трансграничному перемещению прекурсоров "
    "взрывчатых веществ. Будут обсуждены контроль за аммиачной селитрой, подготовка "
    "таможенников и обмен статистикой изъятий. Просим подтвердить состав делегаций до конца "
    "месяца.",
    "В соответствии с Протоколом о сотрудничестве Секретариат сообщает, что назначенный им "
    "офицер связи сменится в январе. Новый офицер примет всю текущую переписку и ознакомлен с "
    "открытыми запросами. Контактные данные будут направлены по обычному каналу.",
    "На прошлой неделе завершился учебный курс по расследованию использования криптовалют "
    "террористическими организациями. Курс прошли тридцать следователей из государств-членов. "
    "Преподаватели продемонстрировали инструменты анализа блокчейна и типичные схемы "
    "отмывания.",
    "Направляем предварительные результаты исследования радикализации в местах лишения "
    "свободы. Исследование охватило двенадцать учреждений. Установлено, что изолированных "
    "заключенных вербовщики находят в течение нескольких недель после прибытия.",
    "Стороны договорились подготовить совместное заявление для международной конференции по "
    "жертвам терроризма. В заявлении будет подчеркнута поддержка пострадавших и роль "
    "гражданского общества. Первый проект будет разослан Секретариатом до конца следующей "
    "недели.",
    "Поступила информация о группе лиц, планирующей выезд через регион в зоны конфликтов по "
    "поддельным документам. Группа, по имеющимся данным, использует сеть конспиративных "
    "квартир на северном маршруте. Пограничные службы предупреждены.",
    "Анализ недавних нападений на транспортные узлы показывает, что нападавшие выбирали часы "
    "пикового пассажиропотока и избегали зон видеонаблюдения. Сотрудники охраны зачастую не "
    "были обучены распознавать подозрительное поведение. Рекомендуются совместные учения.",
    "Предлагаем обменяться мнениями о национальных перечнях организаций, признанных "
    "террористическими. Различия между перечнями затрудняют замораживание активов и "
    "рассмотрение запросов о выдаче. Сравнительная таблица, подготовленная нашим правовым "
    "департаментом, прилагается.",
    "В протоколе заседания отражено, что обе стороны поддержали создание защищенного канала "
    "связи между офицерами связи. Технические эксперты оценят варианты и доложат на следующем "
    "заседании. Расходы будут разделены поровну.",
    "Наша служба зафиксировала несколько попыток приобрести беспилотники с измененными "
    "отсеками для полезной нагрузки через интернет-площадки. Покупатели действовали через "
    "посредников в третьих странах. Предлагаем включить этот признак в совместный перечень "
    "индикаторов риска.",
    "В соответствии с Протоколом о сотрудничестве Секретариат направляет список экспертов, "
    "выдвинутых в рабочую группу по использованию интернета в террористических целях. В "
    "список вошли специалисты по модерации контента, цифровой криминалистике и стратегическим "
    "коммуникациям.",
    "Рабочая группа просит представить обновленную статистику приговоров по делам о "
    "терроризме за последние три года. Статистика должна разделять финансирование, вербовку и "
    "участие в нападениях. Просим направить ответ в кратчайшие сроки.",
]

CORPUS = ENGLISH + RUSSIAN
_REPLACEMENTS = ["urgently", "additional", "regional", "срочно", "дополнительно", "региональный"]


def _sentences(text: str) -> list[str]:
    return re.split(r"(?<=[.!?])\s+", text)


def reorder(text: str) -> str:
    parts = _sentences(text)
    return " ".join([parts[-1], *parts[:-1]])


def change_words(text: str, count: int) -> str:
    tokens = text.split(" ")
    for n in range(1, count + 1):
        position = n * len(tokens) // (count + 1)
        tokens[position] = _REPLACEMENTS[n % len(_REPLACEMENTS)]
    return " ".join(tokens)


def respace(text: str) -> str:
    return "\n".join(_sentences(text.upper())).replace(" ", "  ")


def prefix(text: str) -> str:
    label = "К сведению:" if re.search("[а-яА-Я]", text) else "FYI:"
    return f"{label} {text}"


EDITS: dict[str, Callable[[str], str]] = {
    "reordered": reorder,
    "three_words": lambda text: change_words(text, 3),
    "whitespace_case": respace,
    "prefix": prefix,
    "combined": lambda text: prefix(reorder(change_words(text, 1))),
}


def _index() -> TextIndex:
    index = TextIndex()
    for n, text in enumerate(CORPUS):
        assert index.add(f"t{n}", text)
    return index


def test_corpus_false_positive_and_miss_rates(capsys: pytest.CaptureFixture[str]) -> None:
    index = _index()
    unrelated = list(itertools.combinations(range(len(CORPUS)), 2))
    unrelated_hits = [
        (a, b) for a, b in unrelated if f"t{b}" in dict(index.query(CORPUS[a])) and a != b
    ]
    copies = [
        (n, name, edit(text)) for n, text in enumerate(CORPUS) for name, edit in EDITS.items()
    ]
    misses: list[tuple[int, str]] = []
    copy_cross_hits: list[tuple[int, str, str]] = []
    copy_scores: list[float] = []
    for n, name, copy in copies:
        found = dict(index.query(copy))
        if f"t{n}" in found:
            copy_scores.append(found[f"t{n}"])
        else:
            misses.append((n, name))
        copy_cross_hits.extend((n, name, key) for key in found if key != f"t{n}")
    shingle_sets = [shingles(text) for text in CORPUS]
    worst_unrelated = max(
        jaccard(a, b)
        for a, b in itertools.combinations(shingle_sets, 2)
        if a is not None and b is not None
    )
    cross_total = len(copies) * (len(CORPUS) - 1)
    with capsys.disabled():
        print(
            f"\nsimilarity: threshold={JACCARD_THRESHOLD} k={similarity.SHINGLE_WORDS} "
            f"texts={len(CORPUS)} false_positives={len(unrelated_hits)}/{len(unrelated)} "
            f"copy_cross_false_positives={len(copy_cross_hits)}/{cross_total} "
            f"misses={len(misses)}/{len(copies)} "
            f"max_unrelated_jaccard={worst_unrelated:.2f} min_copy_jaccard={min(copy_scores):.2f}"
        )
    assert unrelated_hits == []
    assert copy_cross_hits == []
    assert misses == []


@pytest.mark.parametrize("name", sorted(EDITS))
def test_every_edit_kind_matches_in_both_languages(name: str) -> None:
    index = _index()
    for n in (0, len(ENGLISH)):  # first English and first Russian text
        found = index.query(EDITS[name](CORPUS[n]))
        assert found
        assert found[0][0] == f"t{n}"


def test_normalisation_ignores_case_punctuation_whitespace_and_yo() -> None:
    assert words("Ёлка,  ЕЛКА!\n«ёлка» — x_y") == ["елка", "елка", "елка", "x", "y"]


def test_exact_copy_scores_one_and_best_first() -> None:
    index = TextIndex()
    index.add("original", ENGLISH[0])
    index.add("edited", change_words(ENGLISH[0], 3))
    found = index.query(ENGLISH[0])
    assert [key for key, _ in found] == ["original", "edited"]
    assert found[0][1] == 1.0
    assert JACCARD_THRESHOLD <= found[1][1] < 1.0


def test_short_texts_are_never_indexed_nor_matched() -> None:
    short = " ".join(["terrorism"] * (MIN_WORDS - 1))
    index = TextIndex()
    assert not index.add("short", short)
    assert "short" not in index
    assert len(index) == 0
    index.add("long", ENGLISH[1])
    assert index.query(short) == []
    assert index.query("Exchange of information on foreign terrorist fighters") == []


def test_heavy_rewrite_is_not_matched() -> None:
    index = TextIndex()
    index.add("a", ENGLISH[0])
    assert index.query(change_words(ENGLISH[0], 20)) == []


def test_duplicate_key_is_refused() -> None:
    index = TextIndex()
    index.add("k", ENGLISH[0])
    with pytest.raises(ValueError, match="already indexed"):
        index.add("k", ENGLISH[1])


def test_empty_index_and_results_are_deterministic() -> None:
    assert TextIndex().query(ENGLISH[0]) == []
    assert _index().query(ENGLISH[3]) == _index().query(ENGLISH[3])
