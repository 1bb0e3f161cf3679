"""Real prose in the scripts Kiwix and Gutenberg ship, for tests of chunking and search in other
languages than English (each a few sentences of an encyclopedia-like text, written for these
tests). One sentence per line; some are wider than 100 columns, which prose may be."""

# ruff: noqa: E501

SAMPLES: dict[str, str] = {
    "ja": (
        "日本語の組版では、文字は原則として正方形の仮想ボディの中に配置される。"
        "行の先頭や末尾に来てはならない約物があり、これを禁則処理と呼ぶ。"
        "ルビは、主に漢字の読み方を示すために、親文字の上または右側に小さな文字で付けられる。"
        "縦組みでは、行は上から下へ進み、行送りの方向は右から左になる。"
        "横組みでは、欧文と同じく左から右へ文字が並ぶ。"
    ),
    "zh": (
        "长城是中国古代的军事防御工程，修建的历史可以追溯到西周时期。"
        "秦始皇统一六国后，将各国的城墙连接起来，形成了万里长城。"
        "明朝时期对长城进行了大规模的修缮，今天我们看到的长城大多是明长城。"
        "长城于一九八七年被列入世界文化遗产名录。"
    ),
    "hi": (
        "महाभारत प्राचीन भारत का एक महाकाव्य है। "
        "इसमें कौरवों और पांडवों के बीच हुए युद्ध का वर्णन है। "
        "इस ग्रंथ के रचयिता वेदव्यास माने जाते हैं। "
        "भगवद्गीता महाभारत के भीष्म पर्व का एक भाग है, जिसमें श्रीकृष्ण अर्जुन को उपदेश देते हैं। "
        "कुरुक्षेत्र का युद्ध अठारह दिनों तक चला।"
    ),
    "ar": (
        "السرطان مرض يتميز بنمو غير طبيعي للخلايا. "
        "تلعب التغذية السليمة دورًا مهمًا في الوقاية من السرطان، إذ ينصح الأطباء بتناول الخضروات والفواكه الطازجة. "
        "الغذاء الصحي يقوي جهاز المناعة ويساعد الجسم على مقاومة الأمراض. "
        "كما يجب تجنب الأطعمة المصنعة والسكريات المكررة."
    ),
    "ru": (
        "Московский Кремль — крепость в центре Москвы и древнейшая её часть, главный общественно-политический и историко-художественный комплекс города. "
        "Кремль расположен на Боровицком холме, на левом берегу реки Москвы. "
        "Стены и башни Кремля были построены в конце пятнадцатого века итальянскими мастерами."
    ),
    "be": (
        "Беларусь — дзяржава ва Усходняй Еўропе. "
        "Сталіца краіны — горад Мінск. "
        "Беларусь мяжуе з Расіяй, Украінай, Польшчай, Літвой і Латвіяй. "
        "Большую частку тэрыторыі краіны займаюць раўніны, лясы і балоты."
    ),
    "fr": (
        "La tour Eiffel est une tour de fer puddlé de trois cent trente mètres de hauteur située à Paris, à l'extrémité nord-ouest du parc du Champ-de-Mars en bordure de la Seine. "
        "Construite par Gustave Eiffel et ses collaborateurs pour l'Exposition universelle de Paris de 1889, elle est devenue le symbole de la capitale française."
    ),
    "th": (
        "กรุงเทพมหานครเป็นเมืองหลวงและนครที่มีประชากรมากที่สุดของประเทศไทย เป็นศูนย์กลางการปกครอง การศึกษา การคมนาคมขนส่ง การเงินการธนาคาร การพาณิชย์ การสื่อสาร และความเจริญของประเทศ"
    ),
    "ko": (
        "한글은 조선의 제4대 왕인 세종대왕이 창제한 문자이다. "
        "훈민정음이라는 이름으로 1446년에 반포되었다. "
        "한글은 자음과 모음을 조합하여 음절을 만드는 과학적인 문자 체계로 평가받는다."
    ),
    "en": (
        "The Lighthouse of Alexandria was a lighthouse built by the Ptolemaic Kingdom of Ancient Egypt during the reign of Ptolemy II Philadelphus. "
        "It has been estimated to have been at least 100 metres in overall height."
    ),
}

# Short articles in the languages whose words LanceDB's tokenizer cannot cut (no spaces between
# words, or a word carrying its article and vowels), and keyword questions in each, with the
# article that answers (by index): for the tests and bench/languages.py.
TOPICS: dict[str, list[tuple[str, str]]] = {
    "ja": [
        (
            "組版",
            "日本語の組版では、文字は正方形の仮想ボディの中に配置される。行頭や行末に来てはならない約物を扱う禁則処理も、組版の重要な規則である。",
        ),
        (
            "ルビ",
            "ルビは、漢字の読み方を示すために、親文字の上または右側に小さな文字で付けられる。",
        ),
        ("富士山", "富士山は静岡県と山梨県にまたがる活火山で、標高は三七七六メートルである。"),
        ("寿司", "寿司は酢飯に魚介類などを組み合わせた日本料理で、江戸時代に握り寿司が広まった。"),
        ("新幹線", "新幹線は一九六四年に東京と新大阪の間で開業した高速鉄道である。"),
    ],
    "zh": [
        ("长城", "长城是中国古代的军事防御工程，明朝时期对长城进行了大规模的修缮。"),
        ("大熊猫", "大熊猫主要生活在四川的山区，以竹子为主要食物。"),
        ("故宫", "故宫位于北京中轴线的中心，是明清两代的皇家宫殿。"),
        ("茶", "中国是茶的故乡，绿茶和乌龙茶都有悠久的历史。"),
        ("丝绸之路", "丝绸之路是古代连接中国与地中海地区的贸易路线。"),
    ],
    "ko": [
        ("한글", "한글은 조선의 제4대 왕인 세종대왕이 창제한 문자이다."),
        ("김치", "김치는 배추와 고춧가루로 만드는 한국의 전통 발효 음식이다."),
        ("한라산", "한라산은 제주도에 있는 화산으로 남한에서 가장 높은 산이다."),
        ("태권도", "태권도는 발차기를 중심으로 하는 한국의 전통 무예이다."),
        ("경복궁", "경복궁은 조선 왕조의 법궁으로 서울 종로구에 있다."),
    ],
    "th": [
        ("กรุงเทพมหานคร", "กรุงเทพมหานครเป็นเมืองหลวงและนครที่มีประชากรมากที่สุดของประเทศไทย"),
        ("ต้มยำกุ้ง", "ต้มยำกุ้งเป็นอาหารไทยที่มีรสเปรี้ยวและเผ็ด ปรุงด้วยตะไคร้และใบมะกรูด"),
        ("ช้าง", "ช้างเป็นสัตว์ประจำชาติของไทยและเคยใช้ในการทำศึกสงคราม"),
        ("สงกรานต์", "สงกรานต์เป็นเทศกาลปีใหม่ไทยในเดือนเมษายน ผู้คนเล่นสาดน้ำกัน"),
        ("เชียงใหม่", "เชียงใหม่เป็นเมืองใหญ่ทางภาคเหนือของประเทศไทย มีวัดเก่าแก่มากมาย"),
    ],
    "ar": [
        (
            "الغذاء والسرطان",
            "تلعب التغذية السليمة دورًا مهمًا في الوقاية من السرطان. الغذاء الصحي يقوي جهاز المناعة.",
        ),
        ("القاهرة", "القاهرة هي عاصمة مصر وأكبر مدنها، وتقع على ضفاف نهر النيل."),
        ("الأهرامات", "بُنيت الأهرامات في الجيزة قبل أكثر من أربعة آلاف عام لتكون مقابر للملوك."),
        ("القهوة", "انتشرت القهوة من اليمن إلى العالم الإسلامي في القرن الخامس عشر."),
        ("الخط العربي", "الخط العربي فنٌّ تزييني يعتمد على الحروف العربية وجمال رسمها."),
    ],
    "ru": [
        (
            "Московский Кремль",
            "Московский Кремль — крепость в центре Москвы. Стены и башни Кремля были построены итальянскими мастерами.",
        ),
        (
            "Байкал",
            "Байкал — самое глубокое озеро на планете, его глубина превышает полторы тысячи метров.",
        ),
        (
            "Эрмитаж",
            "Эрмитаж в Санкт-Петербурге хранит одну из крупнейших коллекций картин в мире.",
        ),
        (
            "Транссибирская магистраль",
            "Транссибирская магистраль соединяет Москву с Владивостоком и является самой длинной железной дорогой.",
        ),
        ("Пушкин", "Александр Пушкин написал роман в стихах «Евгений Онегин»."),
    ],
    "hi": [
        ("महाभारत", "महाभारत में कौरवों और पांडवों के बीच हुए युद्ध का वर्णन है।"),
        ("ताजमहल", "ताजमहल आगरा में यमुना नदी के किनारे बना एक सफ़ेद संगमरमर का मकबरा है।"),
        ("गंगा", "गंगा नदी हिमालय से निकलती है और बंगाल की खाड़ी में गिरती है।"),
        ("दिवाली", "दिवाली रोशनी का त्योहार है, जिसमें लोग दीयों और मोमबत्तियों से घर सजाते हैं।"),
        ("क्रिकेट", "क्रिकेट भारत का सबसे लोकप्रिय खेल है और इसके खिलाड़ी बहुत प्रसिद्ध हैं।"),
    ],
    # Latin-script languages whose words LanceDB's English analysis does not stem: the questions
    # use the other number (chevaux/cheval, Burgen/Burg, jardines/jardín) or drop the accents.
    "fr": [
        (
            "Tour Eiffel",
            "La tour Eiffel est une tour de fer construite par Gustave Eiffel pour l'Exposition universelle de 1889 à Paris.",
        ),
        (
            "Château de Versailles",
            "Le château de Versailles fut la résidence des rois de France ; ses jardins et sa galerie des Glaces attirent des millions de visiteurs.",
        ),
        (
            "Camargue",
            "En Camargue, des chevaux blancs vivent en liberté dans les marais du delta du Rhône.",
        ),
        (
            "Cathédrale de Chartres",
            "La cathédrale de Chartres est célèbre pour ses vitraux bleus du treizième siècle.",
        ),
        (
            "Mont-Saint-Michel",
            "Le Mont-Saint-Michel est un îlot rocheux où les marées montent très vite dans la baie.",
        ),
    ],
    "de": [
        (
            "Brandenburger Tor",
            "Das Brandenburger Tor in Berlin wurde im achtzehnten Jahrhundert als Stadttor errichtet.",
        ),
        (
            "Rhein",
            "Der Rhein fließt von den Alpen bis in die Nordsee; an seinen Ufern stehen viele Burgen.",
        ),
        (
            "Oktoberfest",
            "Das Oktoberfest in München ist das größte Volksfest der Welt mit Millionen Besuchern.",
        ),
        (
            "Schwarzwald",
            "Im Schwarzwald werden seit Jahrhunderten Kuckucksuhren aus Holz gebaut.",
        ),
        (
            "Neuschwanstein",
            "Schloss Neuschwanstein wurde für König Ludwig den Zweiten in den bayerischen Alpen erbaut.",
        ),
    ],
    "es": [
        (
            "Alhambra",
            "La Alhambra de Granada es un conjunto de palacios y jardines construido por la dinastía nazarí.",
        ),
        (
            "Sagrada Familia",
            "La Sagrada Familia es una basílica de Barcelona diseñada por Antoni Gaudí; sus torres todavía se construyen.",
        ),
        (
            "Camino de Santiago",
            "El Camino de Santiago es una ruta de peregrinación que miles de peregrinos recorren cada año hasta Galicia.",
        ),
        ("Flamenco", "El flamenco es un arte andaluz que une el cante, el baile y la guitarra."),
        (
            "Islas Canarias",
            "Las islas Canarias son volcanes del océano Atlántico frente a la costa de África.",
        ),
    ],
}
KEYWORD_QUESTIONS: dict[str, list[tuple[str, int]]] = {
    "ja": [("組版", 0), ("ルビ", 1), ("富士山の標高", 2), ("握り寿司", 3), ("新幹線の開業", 4)],
    "zh": [("长城", 0), ("熊猫吃竹子", 1), ("皇家宫殿", 2), ("乌龙茶", 3), ("丝绸之路的贸易", 4)],
    "ko": [
        ("한글을 만든 왕", 0),
        ("김치의 재료", 1),
        ("제주도의 화산", 2),
        ("태권도", 3),
        ("경복궁은 어디에", 4),
    ],
    "th": [("เมืองหลวง", 0), ("ต้มยำกุ้ง", 1), ("ช้าง", 2), ("เทศกาลสงกรานต์", 3), ("ภาคเหนือ", 4)],
    "ar": [
        ("الغذاء", 0),
        ("عاصمة مصر", 1),
        ("أهرامات الجيزة", 2),
        ("القهوة اليمنية", 3),
        ("فن الخط", 4),
        # the singular of a broken plural the article uses: مدنها, للملوك, الحروف
        ("أكبر مدينة", 1),
        ("قبر الملك", 2),
        ("رسم كل حرف", 4),
    ],
    # Other forms of the words the articles use: Кремль/Кремля, озеро/озера, коллекция/коллекций…
    "ru": [
        ("башни Кремль", 0),
        ("глубина озера", 1),
        ("коллекция картины", 2),
        ("железная дорога Владивосток", 3),
        ("роман Онегина", 4),
    ],
    "hi": [
        ("पांडव कौरव युद्ध", 0),
        ("संगमरमर मकबरे", 1),
        ("गंगा नदियों", 2),
        ("दीया मोमबत्ती", 3),
        ("क्रिकेट खिलाड़ियों", 4),
    ],
    "fr": [
        ("tours de fer construites", 0),
        ("les chateaux", 1),
        ("un cheval", 2),
        ("cathedrale celebre", 3),
        ("ilot et maree", 4),
    ],
    "de": [
        ("Stadttore Berlins", 0),
        ("Burg am Ufer", 1),
        ("Volksfeste und Besucher", 2),
        ("Kuckucksuhr aus Hölzern", 3),
        ("Schlösser der Könige", 4),
    ],
    "es": [
        ("jardín nazaríes", 0),
        ("basilicas", 1),
        ("peregrinacion", 2),
        ("bailes andaluces", 3),
        ("un volcán en el oceano atlantico", 4),
    ],
}

# Questions over the real books and archives of ../shared/fixtures, in their own languages: the
# file, then (question, a phrase the answering passage holds); for tests/real and
# bench/languages.py --fixtures.
FIXTURE_QUESTIONS: dict[str, list[tuple[str, str]]] = {
    "epub/idpf-regime-anticancer-arabic.epub": [
        ("الخلايا الجذعية", "ميزة مدهشة"),
        ("عدد الكروموسومات لدى البشر", "ستة وأربعين لدى البشر"),
        ("جائزة نوبل للشيفرة الوراثية", "جائزة نوبل"),
        ("ورم بقطر سنتمتر", "بقطر سنتمتر"),
        ("تصحيح الطفرات في حمض الدنا", "نظام تصحيح"),
    ],
    "zim/wikibooks_be_all_nopic_2017-02.zim": [
        ("кухня Грузіі", "Грузінская кухня"),
        ("зерні кававага дрэва", "кававага дрэва"),
        ("італьянскі алфавіт", "італьянскі алфавіт"),
        ("праграмаваньне на C++", "Дапаможнік па C++"),
        ("кухня Карэі", "Карэйская кухня"),
    ],
}
