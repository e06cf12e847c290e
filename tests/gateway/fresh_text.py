"""Fresh text: same-topic paragraphs in English and Russian that no Party provided.

The false-positive corpus of the third-party rule's detector. Several paragraphs share
boilerplate openings and closings on purpose: those pairs are the hardest unrelated pairs.
"""

# Russian prose is the point of this corpus, so Cyrillic letters are not confusables here.
# ruff: noqa: RUF001

from __future__ import annotations

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

# SCO-RATS's own earlier messages to UNOCT: what the per-recipient memory holds when fresh text
# is sent next. They share the topic (and some vocabulary) with the paragraphs above.
OWN_EARLIER = [
    "SCO-RATS informs UNOCT that its annual report on the regional terrorist threat has been "
    "approved by the Council. The report describes trends in recruitment, financing and "
    "travel, and lists the joint exercises held during the year. An executive summary will "
    "be sent separately.",
    "Our experts would be glad to take part in the workshop on protecting soft targets "
    "during major sporting events. We could present the security arrangements used at the "
    "last regional games, including accreditation checks and coordination centres.",
    "The Regional Anti-Terrorist Structure has updated its database of wanted persons. The "
    "update adds fields for biometric data and aliases used in online communication. Access "
    "rules for partner organisations remain unchanged.",
    "We propose to organise a video conference next month to discuss the draft memorandum "
    "on training of border guards. Our delegation will include two legal advisers and the "
    "head of the training department.",
    "Thank you for the invitation to the expert meeting on countering violent extremism "
    "online. Our representative will speak about moderation of regional social networks "
    "and cooperation with hosting providers.",
    "The Council of the Regional Anti-Terrorist Structure approved the programme of "
    "cooperation for the next three years. Priorities include countering the financing of "
    "terrorism, protection of transport and information exchange on foreign fighters.",
    "РАТС ШОС сообщает, что ежегодный доклад о региональной террористической угрозе "
    "утвержден Советом. В докладе описаны тенденции вербовки, финансирования и перемещений, "
    "а также перечислены совместные учения, проведенные за год.",
    "Наши эксперты готовы принять участие в семинаре по защите уязвимых объектов во время "
    "крупных спортивных мероприятий. Мы могли бы представить меры безопасности, принятые на "
    "последних региональных играх.",
    "Региональная антитеррористическая структура обновила базу данных лиц, находящихся в "
    "розыске. В обновлении добавлены поля для биометрических данных и псевдонимов, "
    "используемых в сетевом общении.",
    "Предлагаем провести в следующем месяце видеоконференцию для обсуждения проекта "
    "меморандума о подготовке пограничников. В состав нашей делегации войдут два "
    "юридических советника и начальник учебного отдела.",
    "Благодарим за приглашение на совещание экспертов по противодействию насильственному "
    "экстремизму в интернете. Наш представитель расскажет о модерации региональных "
    "социальных сетей и взаимодействии с хостинг-провайдерами.",
    "Совет Региональной антитеррористической структуры утвердил программу сотрудничества на "
    "ближайшие три года. Приоритеты включают противодействие финансированию терроризма, "
    "защиту транспорта и обмен информацией об иностранных боевиках.",
]

# Subject lines another Party might have provided: short texts on the same topics, which fresh
# paragraphs must not be taken to reproduce. Each heads one paragraph above (SUBJECT_OF maps
# a subject to the CORPUS index of its paragraph): that pair is related, not a false positive.
SUBJECTS = [
    "Regional seminar on countering the financing of terrorism",
    "Rehabilitation of returning foreign terrorist fighters",
    "Propaganda in encrypted messaging channels",
    "Second meeting of the joint working group",
    "Fraudulent charitable collections after the earthquake",
    "Consultations on explosives precursors",
    "Training course on cryptocurrencies and terrorist financing",
    "Radicalisation in prisons: preliminary results",
    "Joint statement on victims of terrorism",
    "Travel to conflict zones with forged documents",
    "Региональный семинар по противодействию финансированию терроризма",
    "Пропаганда в зашифрованных мессенджерах",
    "Второе заседание совместной рабочей группы",
    "Мошеннические благотворительные сборы после землетрясения",
    "Радикализация в местах лишения свободы",
    "Совместное заявление о жертвах терроризма",
]
SUBJECT_OF = [0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 20, 21, 22, 23, 27, 28]
