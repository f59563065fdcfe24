"""The table of the course's assignments: name -> the module that defines them.

Each module has `assignments()`, one `gencourse.grading.Assignment` per track
(key "NAME-TRACK"). Adding an assignment is a folder `<topic>/assignment/`
and a row here (docs/design.md, "Adding an assignment").
"""

TABLE = {
    "vae": "gencourse.vae.assignment",
    "cyclegan": "gencourse.cyclegan.assignment",
    "stylegan": "gencourse.stylegan.assignment",
}
