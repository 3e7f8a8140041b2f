-- The subsidy programs 博白县 pays, with 2024–2026 Guangxi standards in fen.
--
-- standard_fen is the usual payment per period, ceiling_fen the most one payment may be.
-- Where a payment is a gap (低保 pays the standard minus the household's own income), the
-- ceiling is the full standard and the standard a typical gap.
--
-- Sources: the national and regional documents named in legal_basis fix who is paid and how
-- the amount is set; the yuan figures are estimates of the 2024–2026 level for 玉林/博白 from
-- those documents' published minimums and typical county practice, not read from a 2025
-- 博白 notice. Each row says which. Counties revise standards yearly (usually 1 July or
-- 1 January); a new standard is a new migration updating the row, never an edit of this one.

INSERT INTO programs
    (code, name, department, period_kind, standard_fen, ceiling_fen, per_household, legal_basis, eligibility)
VALUES
-- Estimate: 博白 rural 低保 standard about 5,280 yuan a year (440 yuan a person a month); a
-- typical household gap about 300 yuan a person a month.
('DIBAO_RURAL', '农村最低生活保障金', '博白县民政局', 'monthly', 30000, 44000, false,
 '《社会救助暂行办法》（国务院令第649号）；《广西壮族自治区最低生活保障办法》',
 '家里人均收入低于本县农村低保标准、家庭财产也符合规定的农村户籍家庭，可以向乡镇申请。每月按家里收入和标准的差额补到每个人，收入变了要主动报告。'),

-- Estimate: 玉林 urban 低保 standard about 850 yuan a person a month; typical gap 500.
('DIBAO_URBAN', '城市最低生活保障金', '博白县民政局', 'monthly', 50000, 85000, false,
 '《社会救助暂行办法》（国务院令第649号）；《广西壮族自治区最低生活保障办法》',
 '家里人均收入低于城镇低保标准、家庭财产符合规定的城镇居民家庭，可以向街道或乡镇申请。每月补足收入和标准的差额。'),

-- Estimate: 特困 basic living at least 1.3 times the local 低保 standard (国发〔2016〕14号):
-- 440 × 1.3 ≈ 572 yuan a month; the ceiling covers the urban rate plus the care allowance
-- (照料护理补贴) for those who cannot look after themselves.
('TEKUN', '特困人员救助供养金', '博白县民政局', 'monthly', 57200, 150000, false,
 '《社会救助暂行办法》（国务院令第649号）；《国务院关于进一步健全特困人员救助供养制度的意见》（国发〔2016〕14号）；《广西壮族自治区特困人员救助供养办法》',
 '老人、残疾人和未满16岁的孩子，没有劳动能力、没有生活来源，也没有人能养他（或者养他的人也没有能力）的，由政府按月发给基本生活费，不能自理的还发护理费。'),

-- Estimate: Guangxi 困难残疾人生活补贴 about 90 yuan a month (80–100 across counties).
('DISABILITY_LIVING', '困难残疾人生活补贴', '博白县残疾人联合会', 'monthly', 9000, 10000, false,
 '《国务院关于全面建立困难残疾人生活补贴和重度残疾人护理补贴制度的意见》（国发〔2015〕52号）；《广西壮族自治区困难残疾人生活补贴和重度残疾人护理补贴实施办法》',
 '领了低保的家庭里持有残疾人证的人，每月另外发一份生活补贴。'),

-- Estimate: 重度残疾人护理补贴 90 yuan a month for grade 二级, up to 120 for grade 一级.
('DISABILITY_NURSING', '重度残疾人护理补贴', '博白县残疾人联合会', 'monthly', 9000, 12000, false,
 '《国务院关于全面建立困难残疾人生活补贴和重度残疾人护理补贴制度的意见》（国发〔2015〕52号）；《广西壮族自治区困难残疾人生活补贴和重度残疾人护理补贴实施办法》',
 '持有一级、二级残疾人证（智力、精神残疾三级也算），需要长期有人照顾的，每月发护理补贴，不看家里收入。'),

-- Estimate: 高龄津贴 by age band, about 50 yuan a month at 80–89, 100 at 90–99 and 500 for
-- 百岁老人 (长寿保健补助); the standard is the 80–89 band, the ceiling the 100+ band.
('ELDERLY', '高龄津贴', '博白县民政局', 'monthly', 5000, 50000, false,
 '《中华人民共和国老年人权益保障法》；《广西壮族自治区实施〈中华人民共和国老年人权益保障法〉办法》；自治区高龄津贴发放相关规定',
 '本县户籍、年满80周岁的老人，到村委或乡镇登记后每月发放，年纪越大发得越多，满100岁最多。不用看家里收入。'),

-- Estimate: 耕地地力保护补贴 about 100 yuan per 亩 a year (central funds, Guangxi sets the
-- per-亩 rate yearly); a typical household about 5 亩, the ceiling 50 亩 (种植大户).
('FARMLAND', '耕地地力保护补贴', '博白县农业农村局', 'yearly', 50000, 500000, true,
 '《财政部 农业部关于全面推开农业“三项补贴”改革工作的通知》（财农〔2016〕26号）；《广西壮族自治区耕地地力保护补贴实施方案》',
 '承包了耕地并且还在种的农户，按确权登记的耕地面积每年发一次。耕地撂荒、改成建设用地或者挖了塘的不发。'),

-- Estimate: 生态公益林补偿 16 yuan per 亩 a year for collective and individual forest (central
-- 森林生态效益补偿, Guangxi adds its own 区级 rate); typical 30 亩, ceiling 200 亩.
('FOREST_ECO', '生态公益林补偿', '博白县林业局', 'yearly', 48000, 320000, true,
 '《中央财政森林生态效益补偿基金管理办法》；《林业改革发展资金管理办法》（财资环〔2021〕39号）；《广西壮族自治区森林生态效益补偿资金管理办法》',
 '自家的山林被划进国家级或自治区级生态公益林、不能随便砍伐的，按林地面积每年补偿一次。'),

-- Known national rate: 雨露计划 for 中职/高职 students of 脱贫（监测）家庭 is 3,000 yuan a
-- year (1,500 a semester); paid here once a year.
('YULU', '雨露计划教育补助', '博白县乡村振兴局', 'yearly', 300000, 300000, false,
 '《关于做好雨露计划职业教育补助工作的通知》（国开办发〔2015〕19号）；《广西雨露计划补助实施办法》',
 '脱贫户和防返贫监测户家里有孩子读中专、技校、职业高中或大专（高职）的，每个孩子每年补3000元，凭学校证明申请。'),

-- Estimate: 城乡居民基础养老金 about 163 yuan a month in Guangxi in 2025 (national minimum
-- 143 after the 2024 and 2025 raises, plus the regional part); the ceiling allows the extra
-- paid for long contribution years and for age.
('PENSION_RURAL', '城乡居民基础养老金', '博白县人力资源和社会保障局', 'monthly', 16300, 30000, false,
 '《国务院关于建立统一的城乡居民基本养老保险制度的意见》（国发〔2014〕8号）；《广西壮族自治区城乡居民基本养老保险实施办法》',
 '参加了城乡居民养老保险、年满60周岁、没有领取职工退休金的人，每月领取基础养老金，交费年限越长领得越多。'),

-- Estimate: 孤儿基本生活费 about 1,300 yuan a month for 社会散养 and 1,800 for 机构集中养育
-- (Guangxi raised both in 2023–2024); the ceiling is the institutional rate.
('ORPHAN', '孤儿基本生活费', '博白县民政局', 'monthly', 130000, 180000, false,
 '《国务院办公厅关于加强孤儿保障工作的意见》（国办发〔2010〕54号）；《民政部 财政部关于发放孤儿基本生活费的通知》',
 '父母都去世了、或者都下落不明的未满18岁孩子，不管跟谁生活，每月发基本生活费。事实无人抚养的孩子可参照申请。'),

-- Known national rate: 农村部分计划生育家庭奖励扶助金 960 yuan a person a year (80 a month);
-- Guangxi adds for some families, so the ceiling is 1,440.
('FAMILY_PLANNING', '农村部分计划生育家庭奖励扶助金', '博白县卫生健康局', 'yearly', 96000, 144000, false,
 '《中华人民共和国人口与计划生育法》；《国家人口计生委 财政部关于印发农村部分计划生育家庭奖励扶助制度试点方案的通知》（人口发〔2004〕21号）；《广西壮族自治区人口和计划生育条例》',
 '农村户口、只生了一个孩子或者两个女孩（或孩子去世了）的夫妻，年满60周岁以后，每人每年领取奖励扶助金，一直领到去世。'),

-- Estimate: 在乡老复员军人 and 带病回乡退伍军人 定期生活补助 about 1,000 yuan a month, paid
-- quarterly; the ceiling covers 在乡伤残军人 and 烈士遗属 rates.
('VETERAN_CARE', '优抚对象定期抚恤补助', '博白县退役军人事务局', 'quarterly', 300000, 900000, false,
 '《军人抚恤优待条例》（国务院 中央军委令第788号）；《中华人民共和国退役军人保障法》',
 '在乡的老复员军人、带病回乡退伍军人、参战参试退役人员和烈士遗属等优抚对象，按国家标准每季度发定期抚恤或生活补助。'),

-- Estimate: 临时救助 a one-off of usually 1,000 yuan; capped here at 12 months of the rural
-- 低保 standard for a family in sudden hardship (急难型救助).
('TEMP_RELIEF', '临时救助金', '博白县民政局', 'one_off', 100000, 528000, false,
 '《社会救助暂行办法》（国务院令第649号）；《国务院关于全面建立临时救助制度的通知》（国发〔2014〕47号）；《广西壮族自治区临时救助办法》',
 '家里突然遇到火灾、车祸、大病等意外，一下子生活过不去的，可以向乡镇或村委申请一次性救助，急的可以先救助后补手续。'),

-- Estimate: 农村低收入群体危房改造 about 20,000 yuan a household for a rebuild (central and
-- regional funds), up to 45,000 for a 特困 or severely disabled household's full rebuild.
('HOUSE_RENOVATION', '农村危房改造补助', '博白县住房和城乡建设局', 'one_off', 2000000, 4500000, true,
 '《住房和城乡建设部 财政部 民政部 国家乡村振兴局关于做好农村低收入群体等重点对象住房安全保障工作的实施意见》（建村〔2021〕35号）；《广西壮族自治区农村危房改造补助资金管理办法》',
 '低保户、特困户、低保边缘户、防返贫监测户和困难残疾人家庭，住的房子经鉴定是C级、D级危房的，可以申请改造补助。一户只补一次，房子改好验收后发钱。');
