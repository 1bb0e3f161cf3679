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
