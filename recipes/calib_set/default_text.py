"""The words in the default calibration set: captions written by looking at each image.

Photos are scikit-image's bundled samples (licences in qtool/calibration/default_set/README.md). Each
gets three records: the whole image, its centre crop (the middle 60% of each
side) and a question/answer turn on a half-size copy.
"""

# name -> (whole-image caption, centre-crop caption, (question, answer))
PHOTOS = {
    "astronaut": (
        "A studio portrait of astronaut Eileen Collins smiling in an orange flight suit with mission patches, "
        "an American flag behind her on the left and a model of the space shuttle and a dark helmet on the right.",
        "A closer view of a smiling woman in an orange pressure suit with a metal neck ring, a round purple and "
        "blue mission patch on her chest and a name tag beside it.",
        ("What is the person wearing?", "She is wearing an orange astronaut flight suit with mission patches.")),
    "coffee": (
        "A cup of espresso with light brown crema in a red cup on a matching red saucer, with a small silver "
        "spoon resting on the saucer, photographed from above on a worn wooden table.",
        "A closer view of the red espresso cup, its white inside holding coffee with a smooth light brown "
        "crema, and the bowl of a shiny spoon on the saucer.",
        ("What drink is shown?", "A small cup of espresso coffee sits on a red saucer.")),
    "chelsea": (
        "A close-up photograph of a tabby cat's face, with large yellow-green eyes, a pink nose, white "
        "whiskers and brown striped fur, against a blurred pale background.",
        "A tight crop of a tabby cat's eyes and nose: two yellow-green eyes with black pupils above a pink "
        "nose, surrounded by striped brown fur.",
        ("What animal is this?", "It is a tabby cat with yellow-green eyes looking at the camera.")),
    "rocket": (
        "A SpaceX Falcon 9 rocket standing upright on its launch pad at dusk, lit by star-shaped floodlights "
        "at its base and flanked by tall lattice lightning towers against a deep blue sky.",
        "A closer view of a tall white rocket standing between two thin lattice towers on the launch pad, "
        "with a clear dark blue evening sky behind it.",
        ("Is it day or night?", "It is dusk: the sky is dark blue and the launch pad lights are on.")),
    "coins": (
        "A black-and-white photograph of twenty-four ancient coins laid out in four rows of six on a dark "
        "background; they differ in size, and many show profile heads or standing figures.",
        "A closer view of about a dozen worn ancient coins in neat rows on a dark background, many of them "
        "stamped with a human head.",
        ("How many rows of coins are there?", "There are four rows of coins, with six coins in each row.")),
    "camera": (
        "A black-and-white photograph of a man in a dark coat and gloves looking through a camera mounted on "
        "a tripod, standing on a lawn with domed buildings and a tall tower in the distance.",
        "A closer view of a young man with dark hair bending to look into a small video camera on a metal "
        "tripod, with a field behind him.",
        ("What is the man doing?", "He is filming or taking pictures with a camera on a tripod.")),
    "hubble_deep_field": (
        "The Hubble eXtreme Deep Field: thousands of distant galaxies of many colours and shapes, tiny "
        "points, spirals and red or blue smudges of light scattered over a black background.",
        "A closer view of a patch of black sky scattered with small red, orange, white and blue galaxies, "
        "some round and some elongated.",
        ("What does this image show?", "It shows a deep view of space full of faint, distant galaxies.")),
    "immunohistochemistry": (
        "A microscope image of stained colon tissue: glands stained brown with curved outlines and rows of "
        "cells, surrounded by pale tissue dotted with small blue nuclei.",
        "A closer view of brown-stained glands on either side of a pale strip of tissue full of small, "
        "elongated blue nuclei.",
        ("What kind of image is this?", "It is a stained tissue section photographed through a microscope.")),
    "retina": (
        "A fundus photograph of a healthy left eye: an orange-red retina inside a black circle, with blood "
        "vessels branching from the bright yellow optic disc on the left toward a darker spot in the middle.",
        "A closer view of an orange retina crossed by thin branching red blood vessels, with the darker "
        "macula near the centre.",
        ("What part of the body is shown?", "This is the back of a human eye, the retina.")),
    "moon": (
        "A grey, low-contrast photograph of the moon's surface with a bright round crater at the top left, "
        "scattered small craters and a streak of dark rough ground running down the middle.",
        "A closer view of flat grey lunar ground with a few small pits and a chain of dark marks running "
        "from top to bottom.",
        ("Is this image in colour?", "No, it is a grey, low-contrast image of the moon's surface.")),
    "page": (
        "A scanned page of printed text headed 'Region-based segmentation', with a paragraph about finding "
        "markers for coins and background, and a line of Python code at the bottom.",
        "A closer view of a few lines of printed sans-serif text about markers, objects and grey values, on "
        "unevenly lit paper.",
        ("What is the title of the page?", "The page is titled 'Region-based segmentation'.")),
    "text": (
        "A grey photograph, taken at a steep angle, of handwritten mathematical symbols in dark ink on lined "
        "paper, including brackets, an equals sign and letters.",
        "A closer view of slanted handwritten maths in dark ink, with a bracketed expression crossing the "
        "faint ruled lines of the paper.",
        ("What is written here?", "It shows handwritten mathematical expressions in ink on lined paper.")),
    "cell": (
        "A grey microscope phase image of a single round cell floating in saline, a bright disc in the lower "
        "right with a dark halo, on a background with faint curved bands.",
        "A closer view of grainy grey background with faint banding, and part of a bright round cell at the "
        "right edge.",
        ("How many cells are visible?", "There is just one round cell in the image.")),
    "clock": (
        "A grey photograph of a round clock that is so motion-blurred, smeared sideways, that its hands and "
        "numbers cannot be read, against a plain grey background.",
        "A closer view of the blurred pale clock face, its edges doubled by horizontal motion.",
        ("Can you read the time?", "No, the clock is far too blurred to read the time.")),
    "brick": (
        "A grey photograph of a brick wall turned on its side, long narrow bricks running vertically in "
        "staggered columns separated by pale mortar lines, seen slightly in perspective.",
        "A closer view of long grey bricks standing in vertical columns, the joints between them staggered.",
        ("What material is shown?", "Bricks laid in staggered lines with pale mortar between them.")),
    "grass": (
        "A grey texture of a lawn seen from above: dense thin grass blades pointing in every direction, with "
        "small clover-like leaves mixed in.",
        "A closer view of tangled grass blades and a few small rounded leaves.",
        ("What is in the picture?", "It is grass seen from above, shown as a grey texture.")),
}

# title, body, caption
PARAGRAPHS = [
    ("Library hours",
     "The reading room is open from nine to six on weekdays and from ten to four on Saturdays. "
     "It is closed on Sundays and public holidays.",
     "A printed notice titled 'Library hours' saying the reading room is open nine to six on weekdays and ten "
     "to four on Saturdays, and closed on Sundays and holidays."),
    ("Water supply",
     "Water will be turned off on Tuesday between 8 am and noon while pipes in the basement are replaced. "
     "Please fill a jug beforehand.",
     "A notice headed 'Water supply' warning that the water will be off on Tuesday from 8 am to noon while "
     "basement pipes are replaced, and asking residents to fill a jug beforehand."),
    ("Lost cat",
     "Our grey cat Pepper has been missing since Friday. She wears a red collar with a bell. "
     "If you see her, please call 555 0142.",
     "A lost-cat poster: a grey cat called Pepper, missing since Friday, wears a red collar with a bell, "
     "and anyone who sees her should call 555 0142."),
    ("Meeting notes",
     "The team agreed to move the launch to 14 May. Ana will update the budget, "
     "and Tom will book the hall for the demo.",
     "Typed meeting notes recording that the launch moves to 14 May, that Ana will update the budget and "
     "that Tom will book the hall for the demo."),
    ("Pancakes",
     "Whisk two eggs with a cup of milk and a cup of flour. Rest the batter for ten minutes, "
     "then fry thin rounds in butter.",
     "A short recipe card for pancakes: whisk two eggs with a cup each of milk and flour, rest the batter "
     "ten minutes, then fry thin rounds in butter."),
    ("Garden rules",
     "Please close the gate behind you, keep dogs on a lead and take your rubbish home. "
     "Bicycles may be left by the shed.",
     "A sign listing garden rules: close the gate, keep dogs on a lead, take rubbish home, and leave "
     "bicycles by the shed."),
    ("Train delay",
     "The 7:45 service to Leeds is delayed by about twenty minutes because of a signal fault. "
     "We apologise for the inconvenience.",
     "A printed announcement that the 7:45 train to Leeds is running about twenty minutes late because of a "
     "signal fault, with an apology."),
    ("Thank you",
     "Dear Sam, thank you for the lovely flowers and for helping us move last weekend. "
     "Dinner is on us next time. Love, Mia.",
     "A short thank-you note from Mia to Sam for the flowers and for help with moving last weekend, promising "
     "to pay for dinner next time."),
]

# title, column header, label pool, unit, value range
TABLES = [
    ("City temperatures", "Temp", ["Oslo", "Lima", "Pune", "Kyiv", "Doha", "Nice", "Quito", "Perth"], "°C", (-5, 35)),
    ("Exam scores", "Score", ["Ana", "Ben", "Chen", "Dara", "Eli", "Femi", "Gus", "Hana"], "", (40, 100)),
    ("Trains to Leeds", "Platform", ["07:15", "07:45", "08:10", "08:40", "09:05", "09:30", "10:00"], "", (1, 9)),
]

SHOPS = ["CORNER MARKET", "GREEN GROCER", "DAILY DELI", "HILLSIDE STORE"]
ITEMS = ["coffee", "bread", "apples", "milk", "tea", "rice", "soap", "pasta", "eggs", "juice", "cheese", "onions"]

SIGN_WORDS = ["EXIT", "OPEN", "STOP", "SALE", "CAFE", "PARKING", "NO ENTRY", "PUSH", "PULL", "HOTEL", "PHARMACY",
              "BUS STOP", "WELCOME", "CLOSED", "TAXI", "LIBRARY"]

# title, x label, y label, categories, value range
CHART_TOPICS = [
    ("Monthly sales", "month", "units sold", ["Jan", "Feb", "Mar", "Apr", "May", "Jun"], (5, 95)),
    ("Rainfall by season", "season", "rainfall (mm)", ["Spring", "Summer", "Autumn", "Winter"], (20, 180)),
    ("Votes per option", "option", "votes", ["A", "B", "C", "D", "E"], (3, 60)),
    ("Visitors per day", "day", "visitors", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], (40, 400)),
    ("Fruit sold", "fruit", "kilograms", ["Apples", "Pears", "Plums", "Grapes"], (10, 90)),
    ("Goals per season", "season", "goals", ["2019", "2020", "2021", "2022", "2023"], (20, 75)),
]
